"""Command line: thin. Parses arguments, calls the library, sets exit codes.

Exit codes: 0 success, 1 a build step failed, 2 bad config, arguments or build folder, 130 interrupted
(SIGINT or SIGTERM: the running step's staging folder is removed; the same command resumes).
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.logging import RichHandler

from edgekd import __version__
from edgekd.config import ConfigError, load_config, load_config_with_board

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Distil, quantize and deploy micro-students on FPGAs.")
err = Console(stderr=True, soft_wrap=True)  # messages are never wrapped: a path stays whole in logs and pipes


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False, show_time=False)],
        force=True,
    )
    for noisy in ("hls4ml", "qonnx", "brevitas", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _load(config: Path, board_file: Path | None = None):
    try:
        if board_file is None:
            return load_config(config)
        return load_config_with_board(config, board_file)
    except ConfigError as e:
        err.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2) from None


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@app.command()
def build(
    config: Path = typer.Argument(..., help="build config (YAML)"),
    out: Optional[Path] = typer.Option(None, "--out", help="build folder (default build/<name>)"),
    force: bool = typer.Option(False, "--force", help="re-run every step"),
    from_step: Optional[str] = typer.Option(None, "--from", help="re-run from this step on"),
    to_step: Optional[str] = typer.Option(None, "--to", help="stop after this step"),
    board_file: Optional[Path] = typer.Option(
        None, "--board-file", help="board YAML (see hw/boards/); overrides hls.board, and its part and clock"
    ),
    verbose: bool = typer.Option(False, "-v", "--verbose"),
    debug: bool = typer.Option(False, "--debug", help="show the traceback of a failure"),
) -> None:
    """Run the pipeline data -> teacher -> distill -> export -> hls -> project -> report."""
    _setup_logging(verbose)
    cfg = _load(config, board_file)
    from edgekd.pipeline import BuildError, BuildFolderError, run_build, step_names
    from edgekd.safety import missing_input_paths

    missing = missing_input_paths(cfg)
    if missing:  # a config error, found before any step runs
        err.print(f"[red]error:[/red] {config}: " + "; ".join(missing) + "; fix the path (relative paths are "
                  "relative to the config file)", highlight=False)
        raise typer.Exit(2)

    names = step_names(cfg)  # a bring-your-own QONNX config runs only export -> hls -> project -> report
    for opt, value in (("--from", from_step), ("--to", to_step)):
        if value is not None and value not in names:
            err.print(f"[red]error:[/red] {opt} {value}: unknown step; steps are {', '.join(names)}")
            raise typer.Exit(2)
    build_dir = out if out is not None else Path("build") / cfg.name
    previous_sigterm = signal.signal(signal.SIGTERM, _terminate)  # SIGTERM cleans up like Ctrl-C
    try:
        results = run_build(cfg, build_dir, force=force, from_step=from_step, to_step=to_step)
    except BuildFolderError as e:
        err.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2) from None
    except KeyboardInterrupt as e:  # SIGINT or SIGTERM: the running step's staging folder is already gone
        step = getattr(e, "edgekd_step", None)
        err.print(f"[red]interrupted[/red]{f' during step {step}' if step else ''}; completed steps are kept: "
                  "run the same command to resume", highlight=False)
        raise typer.Exit(130) from None
    except BuildError as e:
        if debug:
            err.print_exception()
        step = getattr(e, "edgekd_step", None)
        err.print(f"[red]{f'build failed at step {step}' if step else 'error'}:[/red] {e}", highlight=False)
        if step:
            err.print(f"earlier steps are kept; fix the cause and run the same command to resume from {step}")
        raise typer.Exit(1) from None
    except Exception as e:  # a step failed: name it; the traceback only with --debug
        if debug:
            err.print_exception()
        step = getattr(e, "edgekd_step", "?")
        err.print(f"[red]build failed at step {step}:[/red] {type(e).__name__}: {e}", highlight=False)
        err.print(f"earlier steps are kept; fix the cause and run the same command to resume from {step}")
        raise typer.Exit(1) from None
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)
    ran = [s for s, r in results.items() if r["status"] == "ran"]
    skipped = [s for s, r in results.items() if r["status"] == "skipped"]
    err.print(f"build {build_dir}: ran {', '.join(ran) or 'nothing'}; skipped {', '.join(skipped) or 'nothing'}")
    _print_bitstream(build_dir, results)
    report = build_dir / "report" / "report.md"
    if "report" in results and report.exists():
        err.print(f"report: {report}")
        from edgekd.io import read_json

        summary = read_json(build_dir / "report" / "report.json").get("summary", {})
        if summary.get("below_logistic"):  # the simple reference beats part of the build: say so where it is seen
            err.print(f"[yellow]warning:[/yellow] the {' and the '.join(summary['below_logistic'])} scored below a "
                      f"logistic regression on the student's input pixels ({summary['logistic_accuracy']:.2%}); "
                      "see the report", highlight=False)


def _print_bitstream(build_dir: Path, results: dict) -> None:
    """Open boards: the bitstream with its measured figures, or why there is none, where it is seen."""
    path = build_dir / "bitstream" / "bitstream.json"
    if "bitstream" not in results or not path.exists():
        return
    from edgekd.io import read_json

    r = read_json(path)
    bit, pr, st = r["bitstream"], r.get("place_route") or {}, r.get("selftest") or {}
    if bit.get("path"):
        err.print(f"bitstream: {build_dir / bit['path']} (self-test {st.get('status')} under Verilator, "
                  f"{st.get('latency_cycles')} cycles per decision, {pr['fmax_mhz']:.1f} MHz achieved = "
                  f"{st.get('latency_cycles', 0) / pr['fmax_mhz']:.3f} us)", highlight=False)
    else:
        err.print(f"[yellow]no bitstream:[/yellow] {bit.get('why_not')}", highlight=False)


@app.command()
def report(
    build_dir: Path = typer.Argument(..., help="a build folder (build/<name>)"),
    synthesis: list[Path] = typer.Option(
        [], "--synthesis", help="vendor report file or project folder after a lab run (repeatable)"
    ),
    board: Optional[Path] = typer.Option(None, "--board", help="board latency log (JSON or CSV, see README)"),
    verbose: bool = typer.Option(False, "-v", "--verbose"),
) -> None:
    """Rebuild report.json, report.md and report.html, adding synthesis and board measurements."""
    _setup_logging(verbose)
    resolved = build_dir / "config.resolved.yaml"
    if not resolved.is_file():
        err.print(f"[red]error:[/red] {build_dir}: not a build folder (no config.resolved.yaml); run edgekd build first")
        raise typer.Exit(2)
    cfg = _load(resolved)
    from edgekd.pipeline import BuildError, run_build
    from edgekd.report.lab import ingest
    from edgekd.report.vendor import VendorReportError

    try:
        ingest(build_dir, synthesis, board)
    except VendorReportError as e:
        err.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2) from None
    try:
        run_build(cfg, build_dir, from_step="report")
    except BuildError as e:
        err.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(1) from None
    err.print(f"report: {build_dir / 'report' / 'report.html'}")


@app.command()
def csim(
    build_dir: Path = typer.Argument(..., help="a build folder (build/<name>) or its project/ folder"),
    verbose: bool = typer.Option(False, "-v", "--verbose"),
) -> None:
    """Compile the board project's C testbenches with g++, run them on its test vectors, compare exactly.

    Exit status: 0 every output bit-equal, 1 a mismatch or a testbench that does not compile, 2 not a project.
    """
    _setup_logging(verbose)
    from edgekd.project.csim import CsimError, ProjectFolderError, find_project_dir, run_project_csim

    try:
        project = find_project_dir(build_dir)
        cache = project.parent / "cache"
        result = run_project_csim(project, cache_dir=cache if cache.is_dir() else None)
    except ProjectFolderError as e:
        err.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2) from None
    except CsimError as e:
        err.print(f"[red]C-simulation failed:[/red] {e}", highlight=False)
        raise typer.Exit(1) from None
    w = result["wrapper"]
    typer.echo(
        f"{project}: network testbench {result['n']} samples, {100 * result['exact']:.2f}% of "
        f"{result['outputs']} outputs bit-equal, max abs diff {result['max_abs_diff']:g}; "
        f"{w['interface']} wrapper testbench {'passed' if w['passed'] else 'FAILED'} ({result['seconds']:.1f} s)"
    )
    if not result["passed"]:
        if result["mismatched_samples"]:
            err.print(f"[red]mismatch:[/red] samples {result['mismatched_samples']}", highlight=False)
        if not w["passed"]:
            err.print(f"[red]wrapper mismatch:[/red] {w.get('summary', '')} {w.get('stderr', '')}", highlight=False)
        raise typer.Exit(1)


@app.command()
def convert(
    model: Path = typer.Argument(..., help="your quantized model (QONNX .onnx)"),
    board: str = typer.Option(..., "--board", help="built-in board (pynq-z2, zcu104, zcu102, alveo-u250, ...) or a board YAML"),
    out: Optional[Path] = typer.Option(None, "--out", help="build folder (default build/<model name>)"),
    inputs: Optional[Path] = typer.Option(None, "--inputs", help=".npy of real inputs (default: random on the input grid)"),
    allow_inexact: bool = typer.Option(
        False, "--allow-inexact", help="convert a model that cannot be exact and report the measured mismatch"
    ),
    force: bool = typer.Option(False, "--force", help="re-run every step"),
    reuse: Optional[str] = typer.Option(
        None, "--reuse", help="RTL backend: reuse factor R of the dense layers (time-multiplexed, a vector every R "
        "cycles), one number for all, LAYER=R,LAYER=R by QONNX node name, or auto (config rtl.reuse)"),
    verbose: bool = typer.Option(False, "-v", "--verbose"),
    debug: bool = typer.Option(False, "--debug", help="show the traceback of a failure"),
) -> None:
    """Bring your own QONNX model: only the hardware half (export check -> hls -> project -> report).

    The same as `edgekd build` of a config `student: {qonnx: MODEL}`; that config is written to the build folder
    as convert.yaml, so `edgekd build BUILD/convert.yaml --out BUILD` resumes or changes it.
    """
    import re

    from edgekd.config import dump_config, parse_config
    from edgekd.io import write_text

    _setup_logging(verbose)
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", model.stem.removesuffix(".qonnx")).strip(".") or "model"
    student: dict = {"qonnx": str(model.resolve()), "allow_inexact": allow_inexact}
    if inputs is not None:
        student["inputs"] = str(inputs.resolve())
    board_value = str(Path(board).resolve()) if board.endswith((".yaml", ".yml")) else board
    raw: dict = {"name": name, "student": student, "hls": {"board": board_value}}
    if reuse is not None:
        try:
            raw["rtl"] = {"reuse": "auto" if reuse == "auto" else int(reuse) if "=" not in reuse else
                          {k.strip(): int(v) for k, v in (item.split("=", 1) for item in reuse.split(",") if item)}}
        except ValueError:
            err.print(f"[red]error:[/red] --reuse {reuse}: give one integer or LAYER=R,LAYER=R (integers)",
                      highlight=False)
            raise typer.Exit(2) from None
    try:
        cfg = parse_config(raw,
                           source=f"edgekd convert {model}", base_dir=Path.cwd())
    except ConfigError as e:
        err.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2) from None
    except (ValueError, FileNotFoundError) as e:  # an unknown board name
        err.print(f"[red]error:[/red] --board {board}: {e}", highlight=False)
        raise typer.Exit(2) from None
    build_dir = out if out is not None else Path("build") / cfg.name
    config_path = build_dir / "convert.yaml"
    from edgekd.safety import is_foreign_folder

    if is_foreign_folder(build_dir):  # checked before convert.yaml (a build marker) is written into it
        err.print(f"[red]error:[/red] {build_dir}: folder has files but is not an edgekd build folder; "
                  "choose a new or empty folder for --out", highlight=False)
        raise typer.Exit(2)
    try:
        build_dir.mkdir(parents=True, exist_ok=True)
        write_text(config_path, dump_config(cfg))
    except OSError as e:
        err.print(f"[red]error:[/red] {build_dir}: cannot write the build folder ({e.strerror})", highlight=False)
        raise typer.Exit(2) from None
    build(config=config_path, out=build_dir, force=force, from_step=None, to_step=None, board_file=None,
          verbose=verbose, debug=debug)


@app.command()
def validate(config: Path = typer.Argument(..., help="build config (YAML)")) -> None:
    """Check a config and print it resolved with every default."""
    from edgekd.config import dump_config

    typer.echo(dump_config(_load(config)), nl=False)


@app.command("suggest-student")
def suggest_student(
    config: Path = typer.Argument(..., help="build config (YAML)"),
    build_dir: Optional[Path] = typer.Option(
        None, "--build", help="build folder with a trained teacher (default: a randomly initialised teacher, as DisWOT)"
    ),
    budget_params: Optional[int] = typer.Option(None, "--budget-params", min=1, help="at most this many parameters"),
    budget_latency_us: Optional[float] = typer.Option(
        None, "--budget-latency-us", min=0.0, help="at most this estimated latency (config's board clock and io_type)"
    ),
    top: int = typer.Option(10, "--top", min=1, help="rows to print"),
    batch: int = typer.Option(64, "--batch", min=4, help="images of the probe batch"),
    out: Optional[Path] = typer.Option(None, "--out", help="JSON result (default suggest-student-<name>.json)"),
    verbose: bool = typer.Option(False, "-v", "--verbose"),
) -> None:
    """Rank cell_cnn variants within a budget by teacher similarity at initialisation (DisWOT), no training."""
    _setup_logging(verbose)
    cfg = _load(config)
    from edgekd.io import write_json
    from edgekd.students.suggest import SuggestError, render_table, suggest_students

    try:
        result = suggest_students(cfg, build_dir, budget_params, budget_latency_us, batch=batch)
    except SuggestError as e:
        err.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2) from None
    dest = out if out is not None else Path(f"suggest-student-{cfg.name}.json")
    write_json(dest, result)
    Console().print(render_table(result, top))
    err.print(f"{len(result['candidates'])} candidates ranked; JSON: {dest}")


@app.command()
def sweep(
    config: Path = typer.Argument(..., help="base build config (YAML)"),
    sweep_file: Path = typer.Argument(..., help="sweep file: grid / zip / points of config keys, budgets (YAML)"),
    out: Optional[Path] = typer.Option(None, "--out", help="sweep folder (default build/<name>-sweep)"),
    scheduler: Optional[str] = typer.Option(
        None, "--scheduler", help="address of a running Dask scheduler (tcp://HOST:8786); default: a LocalCluster"
    ),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="LocalCluster worker processes (default: cores)"),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="build the points that failed last time again"),
    verbose: bool = typer.Option(False, "-v", "--verbose"),
) -> None:
    """Build every point of a design-space sweep (one teacher, Dask tasks); sweep.json/md/html and best.yaml.

    Exit status: 0 sweep written (failed points are recorded in it), 1 the shared teacher or the cluster failed,
    2 bad config, sweep file, point (named with its key) or folder, 130 interrupted (the same command resumes).
    """
    _setup_logging(verbose)
    from edgekd.sweep.run import SweepError, SweepFolderError, run_sweep

    previous_sigterm = signal.signal(signal.SIGTERM, _terminate)
    try:
        doc = run_sweep(config, sweep_file, out=out, scheduler=scheduler, workers=workers, retry_failed=retry_failed)
    except (ConfigError, SweepFolderError) as e:  # SweepSpecError is a ConfigError: a point and key named
        err.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err.print("[red]interrupted[/red]; finished points are cached: run the same command to resume", highlight=False)
        raise typer.Exit(130) from None
    except (SweepError, OSError) as e:
        err.print(f"[red]sweep failed:[/red] {e}", highlight=False)
        raise typer.Exit(1) from None
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)
    s = doc["summary"]
    dest = Path(doc["out"])
    err.print(f"sweep {dest}: {s['points']} points, {s['ok']} built, {s['failed']} failed ({s['cached']} cached); "
              f"Pareto (accuracy vs latency): {s['pareto_latency']}; "
              + (f"best: point {s['best']} -> {dest / 'best.yaml'}" if s["best"] is not None else "no point within the budgets"))
    err.print(f"report: {dest / 'sweep.md'}, {dest / 'sweep.html'}")


@app.command()
def version() -> None:
    """Print the edgekd version."""
    typer.echo(__version__)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
