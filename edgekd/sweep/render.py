"""sweep.md and sweep.html from sweep.json (jinja2 templates in edgekd/sweep/templates, StrictUndefined)."""

from __future__ import annotations

import json

from jinja2 import Environment, PackageLoader, StrictUndefined

from edgekd.sweep.select import accuracy_of

__all__ = ["render_html", "render_markdown"]


def _env(autoescape: bool = False) -> Environment:
    env = Environment(loader=PackageLoader("edgekd", "sweep/templates"), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=autoescape)
    env.filters["pct"] = lambda v: "n/a" if v is None else f"{100 * v:.2f}%"
    env.filters["pct0"] = lambda v: "n/a" if v is None else f"{100 * v:.0f}%"
    env.filters["num"] = lambda v, fmt="{:,}": "n/a" if v is None else fmt.format(v)
    env.globals["accuracy_of"] = accuracy_of
    return env


def render_markdown(doc: dict) -> str:
    return _env().get_template("sweep.md.j2").render(d=doc)


def render_html(doc: dict) -> str:
    from edgekd.sweep import plots

    return _env(autoescape=True).get_template("sweep.html.j2").render(
        d=doc, sweep_json=json.dumps(doc, indent=1),
        plot_latency=plots.accuracy_vs_latency(doc), plot_utilization=plots.accuracy_vs_utilization(doc),
    )
