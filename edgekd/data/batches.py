"""Mini-batch index streams shared by every training loop."""

from __future__ import annotations

from collections.abc import Iterator

import torch


def batches_per_pass(n: int, batch_size: int) -> int:
    """Optimizer steps in one pass over n rows (at least 1): the step budget of an epoch on all the data."""
    return max(1, -(-n // batch_size))


def shuffled_batches(n: int, batch_size: int, gen: torch.Generator) -> Iterator[torch.Tensor]:
    """Endless batches of row indices: successive shuffles of range(n), each cut into batches (the last
    batch of a shuffle may be short). Drawn lazily, so one pass per epoch draws exactly what a per-epoch
    `randperm` loop drew: same seed, same batches."""
    while True:
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, batch_size):
            yield order[i : i + batch_size]
