"""Name -> factory registries, so a config names a dataset, teacher, student or loss by string.

Tests ask a registry for every entry at once (`STUDENTS.names()`), so adding an entry is all it
takes for it to be covered.
"""

from __future__ import annotations

import importlib
from typing import Callable, Generic, TypeVar

F = TypeVar("F", bound=Callable)


class Registry(Generic[F]):
    def __init__(self, kind: str, modules: tuple[str, ...]) -> None:
        self.kind = kind
        self._entries: dict[str, F] = {}
        # Modules whose import registers the built-in entries; imported on first lookup so that
        # `import edgekd` stays cheap and no registration is forgotten.
        self._modules = modules
        self._loaded = False

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._modules:
                importlib.import_module(module)

    def register(self, name: str) -> Callable[[F], F]:
        def add(factory: F) -> F:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = factory
            return factory

        return add

    def get(self, name: str) -> F:
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise KeyError(f"unknown {self.kind} '{name}'; registered: {known}") from None

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._entries


DATASETS: Registry = Registry("dataset", ("edgekd.data.cells",))
TEACHERS: Registry = Registry("teacher", ("edgekd.teachers.resnet", "edgekd.teachers.wav2vec"))
STUDENTS: Registry = Registry("student", ("edgekd.students.cell_cnn", "edgekd.students.wav2small"))
LOSSES: Registry = Registry("loss", ("edgekd.distill.losses", "edgekd.distill.methods"))
