"""Step `report`: report.json (source of truth) and report.md rendered from it."""

from __future__ import annotations

from edgekd.io import write_json, write_text
from edgekd.pipeline import BuildContext
from edgekd.report.assemble import assemble_report
from edgekd.report.render import render_markdown


def run(ctx: BuildContext) -> None:
    report = assemble_report(ctx.config, ctx.build_dir)
    write_json(ctx.work / "report.json", report)
    write_text(ctx.work / "report.md", render_markdown(report))
