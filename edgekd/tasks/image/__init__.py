"""Image classification (cell sorting and any image folder): the model half of the build.

    data     splits.npz, data.json                  (edgekd.tasks.image.data)
    teacher  teacher.pt / teacher.json, logits       (edgekd.tasks.image.teacher)
    distill  student.pt, float.pt, baseline, metrics (edgekd.tasks.image.distill)
    export   QONNX, torch == QONNX, the hardware contract with the test and validation splits on the grid
"""

from __future__ import annotations

from edgekd.context import BuildContext, Step


def model_steps() -> list[Step]:
    from edgekd.tasks.image import data, distill, export, teacher

    return [
        Step("data", data.run, ("data",), (), "datasets and deterministic splits"),
        Step("teacher", teacher.run, ("teacher", "seed"), ("data",), "train or load the teacher; cache its logits"),
        Step("distill", distill.run, ("student", "distill"), ("data", "teacher"), "QAT student from cached teacher logits"),
        Step("export", export.run, ("student", "hls"), ("data", "distill"), "QONNX export, op check, torch == QONNX"),
    ]


def write_report(ctx: BuildContext) -> None:
    from edgekd.report.assemble import assemble_report
    from edgekd.report.render import write_report as write

    write(assemble_report(ctx.config, ctx.build_dir), ctx.work)
