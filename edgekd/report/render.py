"""Human renderings of report.json (markdown now; HTML and plots render from the same dict)."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("edgekd", "report/templates"),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["pct"] = lambda v: "n/a" if v is None else f"{100 * v:.2f}%"
    env.filters["signed_pts"] = lambda v: f"{100 * v:+.2f} pts"
    env.filters["thousands"] = lambda v: "n/a" if v is None else f"{v:,}"
    return env


def render_markdown(report: dict) -> str:
    return _env().get_template("report.md.j2").render(r=report)
