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

import re
from pathlib import Path, PurePosixPath

__all__ = ["BUILD_MARKERS", "MAX_MODEL_BYTES", "QONNX_DOMAINS", "check_onnx_model", "is_foreign_folder", "is_inside",
           "read_untrusted_qonnx"]

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


# A bring-your-own QONNX model: the custom domains the QONNX ecosystem writes, all read as qonnx's own
# (older brevitas exports say 'onnx.brevitas', FINN 'finn' / 'finn.custom_op.general'; often without an
# opset import for that domain, which onnx.checker refuses).
QONNX_DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general", "finn", "onnx.brevitas")
MAX_MODEL_BYTES = 256 * 2**20  # model file plus external data; the models hls4ml can place are far smaller


def _qonnx_custom_ops() -> set[str]:
    import qonnx.custom_op.general as general

    names = list(getattr(general, "custom_op", None) or getattr(general, "__all__", []))
    return {name.split("_v")[0] for name in names}


def read_untrusted_qonnx(path: Path | str, error: type[Exception]) -> "onnx.ModelProto":  # noqa: F821
    """Load a QONNX file someone else wrote, refusing with `error` (naming the file, node, op and domain):

    - files over `MAX_MODEL_BYTES` (with their external data) and external data outside the model's folder
      (absolute paths, `..`, symlinks leading out) or missing;
    - nodes of a custom domain other than the QONNX ones, and QONNX-domain ops qonnx does not know;
    - anything onnx.checker refuses in the standard part, after the QONNX-domain nodes are put in
      'qonnx.custom_op.general' and that domain gets its opset import (what the checker needs to accept
      the ecosystem's own files).
    """
    import onnx
    from onnx import external_data_helper

    path = Path(path)
    size = path.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise error(f"{path}: {size / 2**20:.0f} MiB is over the {MAX_MODEL_BYTES // 2**20} MiB limit for a model")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # noqa: BLE001 - protobuf DecodeError and friends
        raise error(f"{path}: not an ONNX model ({type(err).__name__}: {str(err)[:200]})") from None
    base = path.parent
    for tensor in external_data_helper._get_all_tensors(model):
        if not external_data_helper.uses_external_data(tensor):
            continue
        info = {e.key: e.value for e in tensor.external_data}
        loc = info.get("location", "")
        if not is_inside(base, loc):
            raise error(f"{path}: tensor '{tensor.name}' keeps its data at '{loc}', outside the model's folder; "
                        "external data must sit beside the model")
        if not (base / loc).is_file():
            raise error(f"{path}: tensor '{tensor.name}': external data file '{loc}' does not exist")
        size += (base / loc).stat().st_size
        if size > MAX_MODEL_BYTES:
            raise error(f"{path}: the model and its external data are over the {MAX_MODEL_BYTES // 2**20} MiB limit")
    if size > path.stat().st_size:
        external_data_helper.load_external_data_for_model(model, str(base))
    known = _qonnx_custom_ops()
    used = False
    for node in model.graph.node:
        if node.domain in ("", "ai.onnx"):
            continue
        if node.domain not in QONNX_DOMAINS:
            raise error(f"{path}: node '{node.name}' (op {node.op_type}, domain '{node.domain}'): unknown custom "
                        f"op; edgekd reads standard ONNX ops and the QONNX ops ({', '.join(sorted(known))}) of the "
                        f"domains {', '.join(QONNX_DOMAINS)}")
        if node.op_type not in known:
            raise error(f"{path}: node '{node.name}' (op {node.op_type}, domain '{node.domain}'): qonnx has no op "
                        f"{node.op_type} in that domain (it knows {', '.join(sorted(known))})")
        node.domain = QONNX_DOMAINS[0]
        used = True
    opsets = [o for o in model.opset_import if o.domain not in QONNX_DOMAINS[1:]]
    if used and not any(o.domain == QONNX_DOMAINS[0] for o in opsets):
        opsets.append(onnx.helper.make_opsetid(QONNX_DOMAINS[0], 1))
    del model.opset_import[:]
    model.opset_import.extend(opsets)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as err:
        reason = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        where = re.search(r"Name: (\S*) OpType: (\S+)", str(err))  # the checker's context names the node
        node = f"node '{where.group(1)}' ({where.group(2)}): " if where else ""
        raise error(f"{path}: onnx.checker refuses the model: {node}{reason}; fix it in the exporter or add what "
                    "the ONNX specification requires") from None
    return model


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
