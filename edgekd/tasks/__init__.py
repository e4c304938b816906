"""Tasks as plug-ins: each provides the model half of a build and hands the hardware half one contract.

A task (image classification, speech emotion regression, a bring-your-own QONNX model) is a module with
    model_steps() -> list[Step]   its steps among data, teacher, distill, export, in that order; its `export`
                                  writes the hardware contract (edgekd.contract.HardwareContract)
    write_report(ctx)             report.json first, then report.md and report.html
The hardware steps (edgekd.steps: hls, project, report) are the same for every task. `task_for` picks the
task from the config; nothing else in the build asks which task it is. A task's modules are imported only
when its steps run, so listing steps (the CLI's --from/--to) stays cheap.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from edgekd.config import BuildConfig

MODEL_STEPS = ("data", "teacher", "distill", "export")


@dataclass(frozen=True)
class Task:
    name: str
    module: str                 # the plug-in module: model_steps(), write_report(ctx)
    model_steps: tuple[str, ...]  # which of MODEL_STEPS it runs (the rest are skipped, and the manifest says so)
    skipped_because: str = ""

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)


TASKS: dict[str, Task] = {
    "image_classification": Task("image_classification", "edgekd.tasks.image", MODEL_STEPS),
    "speech_emotion": Task("speech_emotion", "edgekd.tasks.speech", MODEL_STEPS),
    "bring_your_own": Task("bring_your_own", "edgekd.tasks.byo", ("export",),
                           "bring-your-own QONNX model (student.qonnx): the model half is yours"),
}


def task_for(cfg: BuildConfig) -> Task:
    """The task of a build: a QONNX student is brought, else `task` picks classification or regression."""
    if getattr(cfg.student, "qonnx", None) is not None:
        return TASKS["bring_your_own"]
    return TASKS["speech_emotion" if cfg.task == "regression" else "image_classification"]
