"""What a step is and what it sees: the `Step` record and the `BuildContext` handed to it.

Kept apart from `edgekd.pipeline` (which imports every step to list them) so that steps and task plug-ins
import this module, never the pipeline: no import circle between the runner and what it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from edgekd.config import BuildConfig


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[["BuildContext"], None]
    config_sections: tuple[str, ...]
    depends_on: tuple[str, ...]
    description: str
    # Files outside the build folder that the step reads (a bring-your-own QONNX model, its inputs): their
    # sha256 joins the inputs hash, so a changed file re-runs the step.
    input_files: Callable[[BuildConfig], list[Path]] | None = None


@dataclass
class BuildContext:
    config: BuildConfig
    build_dir: Path
    work: Path = field(default=Path("."))  # the running step's staging folder
    step: str = ""

    def dir(self, step: str) -> Path:
        """Final folder of an earlier step (read-only for the running step)."""
        return self.build_dir / step

    @property
    def cache_dir(self) -> Path:
        """Survives step re-runs: content-keyed caches (teacher annotations, compiled C-sim)."""
        return self.build_dir / "cache"
