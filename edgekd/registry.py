"""Name -> factory registries, so a config names a dataset, teacher, student or loss by string.

Tests ask a registry for every entry at once (`STUDENTS.names()`), so adding an entry is all it
takes for it to be covered.
"""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

F = TypeVar("F", bound=Callable)


class Registry(Generic[F]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, F] = {}

    def register(self, name: str) -> Callable[[F], F]:
        def add(factory: F) -> F:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = factory
            return factory

        return add

    def get(self, name: str) -> F:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise KeyError(f"unknown {self.kind} '{name}'; registered: {known}") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries


DATASETS: Registry = Registry("dataset")
TEACHERS: Registry = Registry("teacher")
STUDENTS: Registry = Registry("student")
LOSSES: Registry = Registry("loss")
