"""Design-space sweeps: many builds of one config with one shared teacher, run as Dask tasks, then the
Pareto report and the most accurate point within the budgets (`edgekd sweep`, edgekd.sweep.run)."""

from edgekd.sweep.spec import SweepSpecError

__all__ = ["SweepSpecError"]
