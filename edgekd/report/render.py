"""Human renderings of report.json (markdown now; HTML and plots render from the same dict)."""

from __future__ import annotations


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


def _template(report: dict, kind: str) -> str:
    # speech emotion (task regression) reports CCC instead of accuracy: its own template
    return f"report_regression.{kind}.j2" if report.get("task") == "regression" else f"report.{kind}.j2"


def render_markdown(report: dict) -> str:
    return _env().get_template(_template(report, "md")).render(r=report)


def render_html(report: dict) -> str:
    """Self-contained HTML: the markdown's tables plus embedded plots, all from report.json."""
    import json

    from edgekd.report import plots

    env = _env()
    env.autoescape = True
    return env.get_template(_template(report, "html")).render(
        r=report,
        report_json=json.dumps(report, indent=1),
        plot_layers=plots.per_layer_latency(report),
        plot_latency=plots.latency_sources(report),
        plot_resources=plots.resources_used(report),
    )


def write_report(report: dict, folder) -> None:
    """report.json first (the source of truth), then its renderings."""
    from pathlib import Path

    from edgekd.io import write_json, write_text

    write_json(Path(folder) / "report.json", report)
    write_text(Path(folder) / "report.md", render_markdown(report))
    write_text(Path(folder) / "report.html", render_html(report))
