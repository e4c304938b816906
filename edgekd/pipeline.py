"""BuildContext, the ordered step list, the manifest and resume.

A build is an ordered list of named steps over one config. Each step is a plain function
`step(ctx) -> None` that reads earlier steps' folders and writes its own folder. The pipeline runs
it in a staging folder (`.<step>.staging/`) and renames that onto `<step>/` only when the step
succeeded, so a killed or failed step never leaves a half-written folder behind.

After a step, `manifest.json` records the sha256 of every file it wrote and the hash of its inputs
(the config sections it reads, the outputs of the steps it depends on, the edgekd version). A
re-run skips a step whose inputs hash is unchanged and whose files are intact; that is how a killed
build resumes where it stopped.
"""

from __future__ import annotations

import fcntl
import logging
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from edgekd import __version__
from edgekd.config import BuildConfig, dump_config, sha256_json
from edgekd.context import BuildContext, Step  # noqa: F401 - part of the pipeline's interface
from edgekd.determinism import configure_determinism, seed_step
from edgekd.safety import is_foreign_folder, is_inside
from edgekd.io import file_sha256, read_json, write_json, write_text

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
TIMINGS = "time_per_step.json"
RESOLVED_CONFIG = "config.resolved.yaml"


from edgekd.errors import BuildError, BuildFolderError  # noqa: E402,F401 - part of the pipeline's interface


@contextmanager
def build_lock(build_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the build folder: a second build into it is refused, not interleaved."""
    if build_dir.exists() and not build_dir.is_dir():
        raise BuildFolderError(f"{build_dir}: exists and is not a folder; choose another --out")
    if is_foreign_folder(build_dir):  # steps replace data/, teacher/, ... wholesale: never in a user's folder
        raise BuildFolderError(
            f"{build_dir}: folder has files but is not an edgekd build folder (no manifest.json); "
            "choose a new or empty folder for --out"
        )
    try:
        build_dir.mkdir(parents=True, exist_ok=True)
        handle = open(build_dir / ".edgekd.lock", "a+")
    except OSError as err:
        raise BuildFolderError(f"{build_dir}: cannot write the build folder ({err.strerror}); choose another --out") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildFolderError(
                f"{build_dir}: another edgekd build is running in this folder; wait for it or use another --out"
            ) from None
        yield
    finally:
        handle.close()  # closing releases the lock, also when the process is killed


STEP_NAMES = ("data", "teacher", "distill", "export", "hls", "project", "rtl", "bitstream", "report")

# Steps a config switches on: rtl (rtl.enabled; on by default for open boards) and bitstream (open boards,
# after rtl, bitstream.enabled). Absent from a build that does not enable them (not "skipped").
OPTIONAL_STEPS = ("rtl", "bitstream")

# A bring-your-own QONNX model (student.qonnx) runs only the hardware half (edgekd.tasks.byo): its model
# half's steps are skipped, and manifest.json says so under "skipped".
BYO_STEP_NAMES = ("export", "hls", "project", "report")


def _task(cfg: BuildConfig | None):  # type: ignore[no-untyped-def]
    from edgekd.tasks import TASKS, task_for

    return task_for(cfg) if cfg is not None else TASKS["image_classification"]


def step_names(cfg: BuildConfig | None = None) -> tuple[str, ...]:
    """Names of the steps a build of `cfg` runs, in order (without importing the steps)."""
    from edgekd.tasks import MODEL_STEPS

    from edgekd.config import bitstream_enabled

    runs = _task(cfg).model_steps
    optional = {"rtl": cfg is not None and cfg.rtl.enabled, "bitstream": cfg is not None and bitstream_enabled(cfg)}
    return tuple(n for n in STEP_NAMES if (n not in MODEL_STEPS or n in runs) and optional.get(n, True))


def skipped_steps(cfg: BuildConfig | None = None) -> dict[str, str]:
    """{step: why} for the task's model steps of the one ordered list that a build of `cfg` does not run."""
    task = _task(cfg)
    return {n: task.skipped_because for n in STEP_NAMES if n not in step_names(cfg) and n not in OPTIONAL_STEPS}


def step_list(cfg: BuildConfig | None = None) -> list[Step]:
    """The task's model steps, then the hardware steps every task shares (edgekd.steps)."""
    from edgekd.config import bitstream_enabled
    from edgekd.steps import hardware_steps

    model = _task(cfg).load().model_steps()
    steps = [*model, *hardware_steps(tuple(s.name for s in model), rtl=cfg is not None and cfg.rtl.enabled,
                                     bitstream=cfg is not None and bitstream_enabled(cfg))]
    assert tuple(s.name for s in steps) == step_names(cfg), [s.name for s in steps]
    return steps


class Manifest:
    """manifest.json: per step, its inputs hash and its outputs (relative path -> sha256)."""

    def __init__(self, build_dir: Path) -> None:
        self.path = build_dir / MANIFEST
        self.build_dir = build_dir
        self.steps: dict[str, dict] = {}
        self.skipped: dict[str, str] = {}  # steps of the ordered list this build does not run, and why
        if self.path.exists():
            try:
                data = read_json(self.path)
                self.steps = dict(data.get("steps", {}))
            except (ValueError, OSError, AttributeError) as err:
                # A damaged manifest only costs a rebuild; never trust it.
                log.warning("%s is unreadable (%s); every step will run again", self.path, err)
                self.steps = {}

    def outputs_hash(self, step: str) -> str:
        return sha256_json(self.steps[step]["outputs"])

    def is_current(self, step: str, inputs_sha256: str) -> bool:
        entry = self.steps.get(step)
        if not isinstance(entry, dict) or entry.get("inputs_sha256") != inputs_sha256:
            return False
        outputs = entry.get("outputs")
        if not isinstance(outputs, dict) or not all(isinstance(v, str) for v in outputs.values()):
            return False  # a damaged entry only costs a re-run
        for rel, digest in outputs.items():
            if not is_inside(self.build_dir, rel):  # a tampered manifest never points outside the build
                log.warning("step %s: manifest names %s, outside the build folder; running it again", step, rel)
                return False
            path = self.build_dir / rel
            if not path.is_file() or file_sha256(path) != digest:
                log.info("step %s: %s changed or is missing; running it again", step, rel)
                return False
        return True

    def record(self, step: str, inputs_sha256: str, step_dir: Path, seconds: float) -> None:
        outputs = {
            str(p.relative_to(self.build_dir)): file_sha256(p) for p in sorted(step_dir.rglob("*")) if p.is_file()
        }
        self.steps[step] = {"inputs_sha256": inputs_sha256, "outputs": outputs, "seconds": round(seconds, 3)}
        self.save()

    def forget(self, step: str) -> None:
        if self.steps.pop(step, None) is not None:
            self.save()

    def save(self) -> None:
        write_json(self.path, {"edgekd_version": __version__, "steps": self.steps, "skipped": self.skipped})


def _inputs_sha256(step: Step, cfg: BuildConfig, manifest: Manifest) -> str:
    dump = cfg.model_dump(mode="json")
    payload = {
        "edgekd_version": __version__,
        "step": step.name,
        "config": {s: dump[s] for s in step.config_sections},
        "upstream": {d: manifest.outputs_hash(d) for d in step.depends_on},
    }
    if step.input_files is not None:
        payload["files"] = {str(p): file_sha256(p) for p in step.input_files(cfg)}
    return sha256_json(payload)


def _select(name: str | None, default: int, names: tuple[str, ...] | None = None) -> int:
    names = STEP_NAMES if names is None else names
    if name is None:
        return default
    if name not in names:
        raise BuildError(f"unknown step '{name}'; steps are: {', '.join(names)}")
    return names.index(name)


def run_build(
    cfg: BuildConfig,
    build_dir: Path,
    *,
    force: bool = False,
    from_step: str | None = None,
    to_step: str | None = None,
) -> dict[str, dict]:
    """Run the pipeline; returns {step: {status, seconds}} for the steps considered."""
    steps = step_list(cfg)
    names = tuple(s.name for s in steps)
    first = _select(from_step, 0, names)
    last = _select(to_step, len(steps) - 1, names)
    if first > last:
        raise BuildError(f"--from {from_step} comes after --to {to_step}")

    # Steps hand paths to compilers and tools that run in other folders: work with absolute paths.
    build_dir = Path(build_dir).resolve()
    with build_lock(build_dir):
        configure_determinism()  # fixed thread count + deterministic kernels: bit-reproducible steps
        return _run_locked(steps, cfg, build_dir, force, from_step, first, last)


def _run_locked(
    steps: list[Step], cfg: BuildConfig, build_dir: Path, force: bool, from_step: str | None, first: int, last: int
) -> dict[str, dict]:
    write_text(build_dir / RESOLVED_CONFIG, dump_config(cfg))
    manifest = Manifest(build_dir)
    manifest.skipped = skipped_steps(cfg)
    timings_path = build_dir / TIMINGS
    timings: dict[str, dict] = read_json(timings_path) if timings_path.exists() else {}
    ctx = BuildContext(config=cfg, build_dir=build_dir)
    results: dict[str, dict] = {}

    for index, step in enumerate(steps[: last + 1]):
        missing = [d for d in step.depends_on if d not in manifest.steps]
        if missing:
            raise BuildError(
                f"step {step.name} needs the outputs of {', '.join(missing)}, which have not been built; "
                f"run without --from (or with --from {missing[0]})"
            )
        inputs = _inputs_sha256(step, cfg, manifest)
        rerun = force or index >= first and from_step is not None
        if index < first or (not rerun and manifest.is_current(step.name, inputs)):
            if index < first and step.name not in manifest.steps:
                raise BuildError(
                    f"--from {from_step} needs the outputs of step {step.name}, which have not been built; "
                    f"run without --from"
                )
            if index < first and not manifest.is_current(step.name, inputs):
                raise BuildError(
                    f"step {step.name} is out of date (its config or inputs changed), so --from {from_step} "
                    f"cannot start after it; run with --from {step.name}"
                )
            log.info("step %-8s skipped (inputs unchanged)", step.name)
            results[step.name] = {"status": "skipped", "seconds": 0.0}
            continue

        results[step.name] = {"status": "ran", "seconds": _run_step(step, ctx, manifest, inputs)}
        timings[step.name] = results[step.name]["seconds"]
        write_json(timings_path, timings)
    return results


def _run_step(step: Step, ctx: BuildContext, manifest: Manifest, inputs: str) -> float:
    final = ctx.build_dir / step.name
    staging = ctx.build_dir / f".{step.name}.staging"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    ctx.work, ctx.step = staging, step.name
    log.info("step %-8s running: %s", step.name, step.description)
    start = time.perf_counter()
    try:
        seed_step(step.name)  # a step's random streams never depend on what ran before it in this process
        step.run(ctx)
    except BaseException as err:
        shutil.rmtree(staging, ignore_errors=True)
        err.edgekd_step = step.name  # type: ignore[attr-defined]  # lets the CLI name the failed step
        raise
    seconds = time.perf_counter() - start
    # Downstream steps need no invalidation here: their inputs hash covers this step's outputs.
    manifest.forget(step.name)
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)
    manifest.record(step.name, inputs, final, seconds)
    log.info("step %-8s done in %.1f s", step.name, seconds)
    return seconds
