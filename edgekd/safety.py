"""Checks on untrusted inputs and on where a build may write.

- ONNX files (external teachers) go through `onnx.checker` before onnxruntime sees them: a malformed
  graph is refused with the checker's reason, and external-data references that point outside the
  model's folder are refused by the checker too.
- A build writes only inside its build folder. The folder itself is the user's choice (`--out`, or
  `build/<name>` where `name` is a plain file name: letters, digits, `_ . -`, never `..`); every path
  inside it is derived (step names, fixed file names), and a path read back from `manifest.json` that
  is absolute or climbs out with `..` is not trusted.
- An existing folder that holds files but no edgekd build is refused as `--out`: the pipeline replaces
  step folders (`data/`, `teacher/`, ...) wholesale, which must never hit a user's own `data/`.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

__all__ = ["BUILD_MARKERS", "check_onnx_model", "is_foreign_folder", "is_inside"]

# Files that only an edgekd build writes at the top of its folder.
BUILD_MARKERS = ("manifest.json", "config.resolved.yaml", ".edgekd.lock", "convert.yaml")  # convert.yaml: `edgekd convert`


def check_onnx_model(path: Path | str, error: type[Exception], what: str = "ONNX model") -> None:
    """Run `onnx.checker.check_model` on a file; raise `error` naming the file and the first problem."""
    import onnx

    path = Path(path)
    try:
        # The path form (not a loaded proto) also validates external-data locations against the model folder.
        onnx.checker.check_model(str(path))
    except onnx.checker.ValidationError as err:
        reason = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        raise error(f"{path}: {what} failed the ONNX checker ({reason}); fix or re-export the model") from None
    except Exception as err:  # protobuf DecodeError, OSError...: not an ONNX file at all
        raise error(f"{path}: not a valid {what} ({type(err).__name__}: {str(err)[:200]})") from None


def is_inside(root: Path, rel: str) -> bool:
    """True when `rel` is a relative path without `..` that stays inside `root` (symlinks resolved)."""
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts or rel.startswith("~") or "\\" in rel:
        return False
    root = Path(root).resolve()
    try:
        return (root / rel).resolve().is_relative_to(root)
    except (OSError, RuntimeError):
        return False


def is_foreign_folder(build_dir: Path) -> bool:
    """An existing folder with content but none of the files an edgekd build leaves at its top."""
    if not build_dir.is_dir():
        return False
    try:
        entries = list(build_dir.iterdir())
    except OSError:
        return False  # unreadable: the lock will say so
    if not entries:
        return False
    return not any((build_dir / marker).exists() for marker in BUILD_MARKERS)


def missing_input_paths(cfg) -> list[str]:  # type: ignore[no-untyped-def]
    """'field: path' for every file or folder the config names as an input that does not exist."""
    real_data = not str(cfg.data.source).startswith("synthetic")
    fields = (
        ("data.path", getattr(cfg.data, "path", None) if real_data else None),
        ("data.csv", getattr(cfg.data, "csv", None) if real_data else None),
        ("teacher.path", getattr(cfg.teacher, "path", None) if cfg.teacher.source != "train" else None),
        ("student.qonnx", getattr(cfg.student, "qonnx", None)),
        ("student.inputs", getattr(cfg.student, "inputs", None)),
    )
    return [f"{name}: {path} does not exist" for name, path in fields if path is not None and not Path(path).exists()]
