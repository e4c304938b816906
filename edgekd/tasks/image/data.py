"""Step `data`: load or generate the images, fix the train/val/test splits, and state the label-preserving views.

`data.json` records the views (`augment`: the config's setting, the view numbers and names, how they were
chosen); the teacher and distillation read them from there (`data_views`), so `data.augment: auto` is measured
once, by this step.
"""

from __future__ import annotations

from edgekd.context import BuildContext
from edgekd.data.cells import load_cell_splits
from edgekd.data.views import VIEW_NAMES, views_of
from edgekd.io import read_json, write_json


def resolve_augment(setting, splits) -> dict:
    """The views of `data.augment` for these splits: a named set or list as stated, or `auto` measured."""
    if setting == "auto":
        from edgekd.data.augment_probe import probe_augmentation

        probe = probe_augmentation(splits)
        views, how = probe["views"], {"chosen_by": "probe", "chosen": probe["chosen"], "probe": probe}
    else:
        views, how = list(views_of(setting)), {"chosen_by": "config"}
    return {"setting": setting, "views": views, "names": [VIEW_NAMES[v] for v in views], **how}


def data_views(ctx: BuildContext) -> tuple[int, ...]:
    """The views the data step chose (data.json)."""
    info = read_json(ctx.dir("data") / "data.json")
    if "augment" not in info:  # written by an older edgekd: the config's stated set
        setting = ctx.config.data.augment
        return views_of(setting) if setting != "auto" else (0,)
    return tuple(info["augment"]["views"])


def run(ctx: BuildContext) -> None:
    splits = load_cell_splits(ctx.config.data)
    splits.save(ctx.work / "splits.npz")
    augment = resolve_augment(ctx.config.data.augment, splits)
    write_json(ctx.work / "data.json", {"source": ctx.config.data.source, **splits.summary(), "augment": augment,
                                        "image_size": int(splits.x_train.shape[1])})
