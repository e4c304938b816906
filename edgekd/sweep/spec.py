"""SWEEP.yaml: which config keys take which values, how many points at most, the budgets, the preselection.

    grid:     {dotted.key: [v1, v2, ...], ...}   every combination (crossed)
    zip:      {dotted.key: [v1, v2, ...], ...}   the i-th values together (equal lengths); crossed with grid
    points:   [{dotted.key: value, ...}, ...]    explicit points, added after the grid
    max_points: 64                               refuse a sweep that expands to more points
    budgets:  {latency_us: 3.0, max_utilization: 0.8, params: 6000}
    preselect: 4                                 rank the points' students with suggest-student, build the best 4
    threads: 1                                   torch threads of every build (EDGEKD_THREADS)

Keys are the config's own dotted paths (`student.channels`, `hls.reuse_factor`, `distill.epochs`, ...); each
point is the base config with its keys replaced, validated by the config tree (edgekd.sweep.points). Read
with `yaml.safe_load`; unknown sweep keys are errors naming the key.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edgekd.config import ConfigError
from edgekd.io import read_yaml

__all__ = ["Budgets", "SweepSpec", "SweepSpecError", "expand_overrides", "load_sweep_spec", "parse_sweep_spec"]

DEFAULT_MAX_POINTS = 64


class SweepSpecError(ConfigError):
    """A sweep file or one of its points cannot be used; the message names the file, the point and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Budgets(_Strict):
    """What the chosen point (best.yaml) must meet, besides fitting the board within hls.max_utilization."""

    latency_us: float | None = Field(None, gt=0, description="estimated decision latency (trigger on a pixel stream)")
    max_utilization: float | None = Field(None, gt=0, le=1, description="fullest board resource, as a fraction")
    params: int | None = Field(None, ge=1, description="student parameters")


def _check_key(key: object) -> str:
    if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
        raise ValueError(f"{key!r} is not a dotted config key (e.g. student.channels)")
    if key == "name":
        raise ValueError("'name' cannot vary: every point is a build of the same config (its folder is per point)")
    return key


class SweepSpec(_Strict):
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="keys crossed with each other")
    zip: dict[str, list[Any]] = Field(default_factory=dict, description="keys varied together (equal lengths)")
    points: list[dict[str, Any]] = Field(default_factory=list, description="explicit points")
    max_points: int = Field(DEFAULT_MAX_POINTS, ge=1, description="refuse a sweep with more points")
    budgets: Budgets = Field(default_factory=Budgets)
    preselect: int | None = Field(None, ge=1, description="build only the K students suggest-student ranks best")
    threads: int = Field(1, ge=1, le=64, description="torch threads per build (EDGEKD_THREADS)")

    @field_validator("grid", "zip")
    @classmethod
    def _lists(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in v.items():
            _check_key(key)
            if not values:
                raise ValueError(f"{key}: give at least one value")
        return v

    @field_validator("points")
    @classmethod
    def _point_keys(cls, v: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for i, point in enumerate(v):
            for key in point:
                try:
                    _check_key(key)
                except ValueError as err:
                    raise ValueError(f"point {i}: {err}") from None
        return v

    @model_validator(mode="after")
    def _consistent(self) -> SweepSpec:
        lengths = {len(values) for values in self.zip.values()}
        if len(lengths) > 1:
            sizes = ", ".join(f"{k}: {len(v)}" for k, v in self.zip.items())
            raise ValueError(f"zip: every key needs the same number of values ({sizes})")
        both = set(self.grid) & set(self.zip)
        if both:
            raise ValueError(f"{', '.join(sorted(both))}: a key is either in grid or in zip")
        return self


def expand_overrides(spec: SweepSpec) -> list[dict[str, Any]]:
    """The points' key -> value overrides, in order: grid x zip (grid keys vary slowest), then `points`.

    A spec with no keys at all is one point: the base config."""
    out: list[dict[str, Any]] = []
    if spec.grid or spec.zip:
        grid_rows = [dict(zip(spec.grid, combo)) for combo in itertools.product(*spec.grid.values())]
        n_zip = len(next(iter(spec.zip.values()))) if spec.zip else 0
        zip_rows = [{k: v[i] for k, v in spec.zip.items()} for i in range(n_zip)] or [{}]
        out = [{**g, **z} for g in grid_rows for z in zip_rows]
    out += [dict(p) for p in spec.points]
    return out or [{}]


def _format(err: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid sweep"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = "unknown key (sweep keys: grid, zip, points, max_points, budgets, preselect, threads)" \
            if e["type"] == "extra_forbidden" else e["msg"]
        lines.append(f"  {loc}: {msg}")
    return "\n".join(lines)


def parse_sweep_spec(data: object, source: str = "<sweep>") -> SweepSpec:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SweepSpecError(f"{source}: the top level must be a mapping (grid, zip, points, budgets, ...)")
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as err:
        raise SweepSpecError(_format(err, source)) from None
    n = len(expand_overrides(spec))
    if n > spec.max_points:
        raise SweepSpecError(f"{source}: the sweep has {n} points, more than max_points {spec.max_points}; "
                             "raise max_points or drop values")
    return spec


def load_sweep_spec(path: Path | str) -> SweepSpec:
    path = Path(path)
    return parse_sweep_spec(read_yaml(path, SweepSpecError, "sweep file"), source=str(path))
