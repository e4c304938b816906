"""Speech emotion regression (arousal, dominance, valence; Wav2Small-style students): the model half.

    data     fixed-length windows and splits            (edgekd.tasks.speech.model)
    teacher  teacher annotations of every window         (edgekd.tasks.speech.model)
    distill  float Wav2Small reference, hardware student (edgekd.tasks.speech.model)
    export   QONNX of the hardware student, torch == QONNX, the hardware contract (edgekd.tasks.speech.export)
"""

from __future__ import annotations

from edgekd.context import BuildContext, Step


def model_steps() -> list[Step]:
    from edgekd.tasks.speech import export, model

    return [
        Step("data", model.run_data, ("data",), (), "datasets and deterministic splits"),
        Step("teacher", model.run_teacher, ("teacher", "seed"), ("data",), "train or load the teacher; cache its logits"),
        Step("distill", model.run_distill, ("student", "distill"), ("data", "teacher"), "QAT student from cached teacher logits"),
        Step("export", export.run, ("student", "hls"), ("data", "teacher", "distill"), "QONNX export, op check, torch == QONNX"),
    ]


def write_report(ctx: BuildContext) -> None:
    from edgekd.report.audio import assemble_audio_report
    from edgekd.report.render import write_report as write

    write(assemble_audio_report(ctx.config, ctx.build_dir), ctx.work)
