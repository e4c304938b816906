"""Resolve every sweep point into a whole, validated BuildConfig before anything runs.

A point is the base config's YAML mapping with its dotted keys replaced (`student.channels: [8, 8]` sets
`student: {channels: [8, 8]}`; missing sections are created), validated by the same config tree as
`edgekd build` (edgekd.config.parse_config: relative paths against the config file, board defaults). An
unknown key or a refused value is a SweepSpecError naming the point's index, its keys and the field.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekd import __version__
from edgekd.config import BuildConfig, ConfigError, dump_config, parse_config, sha256_json
from edgekd.hashing import float_environment
from edgekd.io import read_yaml
from edgekd.sweep.spec import SweepSpec, SweepSpecError, expand_overrides

__all__ = ["Point", "describe", "load_base_config", "point_key", "resolve_points", "set_dotted"]


@dataclass
class Point:
    index: int
    overrides: dict[str, Any]
    config: BuildConfig
    key: str = ""  # cache key (point_key), set once the shared teacher is known
    extra: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return describe(self.overrides)

    def config_dict(self) -> dict:
        return self.config.model_dump(mode="json")


def describe(overrides: dict[str, Any]) -> str:
    """`student.channels=[8, 8] hls.reuse_factor=2`, or `base config` for a point with no keys."""
    return " ".join(f"{k}={v}" for k, v in overrides.items()) or "base config"


def set_dotted(data: dict, key: str, value: Any) -> None:
    """Set `a.b.c` in nested mappings, creating the missing ones; refuses to descend into a non-mapping."""
    node = data
    parts = key.split(".")
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            where = ".".join(parts[: depth + 1])
            raise ValueError(  # noqa: TRY004 - a bad sweep key, reported like every other bad value
                f"{where} is {child!r} in the config, not a section: {key} cannot be set inside it")
        node = child
    node[parts[-1]] = copy.deepcopy(value)


def load_base_config(config_path: Path) -> tuple[dict, BuildConfig]:
    """The base config's raw mapping (points edit it) and its validated tree."""
    raw = read_yaml(config_path, ConfigError, "config")
    cfg = parse_config(raw, source=str(config_path), base_dir=config_path.parent)
    return raw, cfg


def resolve_points(config_path: Path, spec: SweepSpec, spec_source: str) -> list[Point]:
    """Every point of `spec` as a validated BuildConfig; the first bad point raises SweepSpecError."""
    raw, _ = load_base_config(config_path)
    points: list[Point] = []
    seen: dict[str, int] = {}
    for index, overrides in enumerate(expand_overrides(spec)):
        where = f"{spec_source}: point {index} ({describe(overrides)})"
        data = copy.deepcopy(raw)
        for key, value in overrides.items():
            try:
                set_dotted(data, key, value)
            except ValueError as err:
                raise SweepSpecError(f"{where}: key {key}: {err}") from None
        try:
            cfg = parse_config(data, source=where, base_dir=config_path.parent)
        except ConfigError as err:
            raise SweepSpecError(str(err)) from None
        except (ValueError, FileNotFoundError) as err:  # e.g. an unknown board name
            raise SweepSpecError(f"{where}: {err}") from None
        digest = sha256_json(cfg.model_dump(mode="json"))
        if digest in seen:
            raise SweepSpecError(f"{where}: resolves to the same config as point {seen[digest]}; drop one of them")
        seen[digest] = index
        points.append(Point(index, overrides, cfg))
    return points


def point_key(cfg: BuildConfig, base_sha256: str, threads: int, to_step: str) -> str:
    """Cache key of a point's result: its resolved config, the shared teacher's files, the float environment
    (torch, numpy, the CPU kernels' instruction set, the workers' thread count), the last step built and the
    edgekd version. Same key, same figures: builds are bit-reproducible in one float environment, and a
    results folder carried to a machine with other kernels is recomputed there, not reused."""
    return sha256_json({
        "config": dump_config(cfg), "base": base_sha256, "float_environment": {**float_environment(), "threads": threads},
        "to_step": to_step, "edgekd_version": __version__,
    })
