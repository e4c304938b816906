"""Step `data`: load or generate the images and fix the train/val/test splits."""

from __future__ import annotations

from edgekd.data.cells import load_cell_splits
from edgekd.io import write_json
from edgekd.context import BuildContext


def run(ctx: BuildContext) -> None:
    splits = load_cell_splits(ctx.config.data)
    splits.save(ctx.work / "splits.npz")
    write_json(ctx.work / "data.json", {"source": ctx.config.data.source, **splits.summary()})
