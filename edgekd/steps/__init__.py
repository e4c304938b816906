"""The hardware half's steps, the same for every task: hls, project, report (one module each).

Each module has `run(ctx: BuildContext) -> None`: it reads the export step's hardware contract
(edgekd.contract) and earlier steps' folders through `ctx.dir(name)`, and writes only into `ctx.work`.
The model half's steps (data, teacher, distill, export) come from the task plug-in (edgekd.tasks).
"""

from __future__ import annotations

from edgekd.context import Step


def hardware_steps(model_steps: tuple[str, ...]) -> list[Step]:
    """hls, project and report, after the task's model steps `model_steps` (their names, in order)."""
    from edgekd.steps import hls, project, report

    return [
        Step("hls", hls.run, ("hls",), ("export",), "hls4ml project, C-simulation, QONNX == C-sim, emulator"),
        Step("project", project.run, ("hls",), ("export", "hls"),
             "board project: HLS top, scripts, driver, test vectors"),
        Step("report", report.run, ("name", "task"), (*model_steps, "hls", "project"), "report.json + report.md"),
    ]
