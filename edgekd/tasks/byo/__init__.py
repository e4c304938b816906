"""A bring-your-own QONNX model (`student: {qonnx: PATH}`): its model half is the user's, so the build runs
only the export step (edgekd.tasks.byo.export) and then the shared hardware steps. data, teacher and distill
are skipped, and the manifest says so."""

from __future__ import annotations

from pathlib import Path

from edgekd.config import BuildConfig
from edgekd.context import BuildContext, Step


def _input_files(cfg: BuildConfig) -> list[Path]:
    return [p for p in (cfg.student.qonnx, cfg.student.inputs) if p is not None]


def model_steps() -> list[Step]:
    from edgekd.tasks.byo import export

    return [Step("export", export.run_export, ("student", "seed", "task", "hls"), (),
                 "load, check and prepare the QONNX model; per-layer exactness verdicts", input_files=_input_files)]


def write_report(ctx: BuildContext) -> None:
    from edgekd.report.byo import assemble_byo_report, write_byo_report

    write_byo_report(assemble_byo_report(ctx.config, ctx.build_dir), ctx.work)
