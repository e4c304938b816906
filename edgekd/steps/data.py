"""Step `data`: load or generate the images and fix the train/val/test splits."""

from __future__ import annotations

from edgekd.data.cells import load_cell_splits
from edgekd.io import write_json
from edgekd.pipeline import BuildContext


def run(ctx: BuildContext) -> None:
    if ctx.config.task == "regression":  # speech emotion: edgekd.steps.audio
        from edgekd.steps import audio

        return audio.run_data(ctx)
    splits = load_cell_splits(ctx.config.data)
    splits.save(ctx.work / "splits.npz")
    write_json(ctx.work / "data.json", {"source": ctx.config.data.source, **splits.summary()})
