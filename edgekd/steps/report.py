"""Step `report`: report.json (source of truth), report.md and report.html rendered from it."""

from __future__ import annotations

from pathlib import Path

from edgekd.io import write_json, write_text
from edgekd.pipeline import BuildContext
from edgekd.report.assemble import assemble_report
from edgekd.report.render import render_html, render_markdown


def run(ctx: BuildContext) -> None:
    if ctx.config.task == "regression":  # speech emotion: edgekd.steps.audio
        from edgekd.steps import audio

        return audio.run_report(ctx)
    write_report(assemble_report(ctx.config, ctx.build_dir), ctx.work)


def write_report(report: dict, folder: Path) -> None:
    """report.json first (the source of truth), then its renderings."""
    write_json(folder / "report.json", report)
    write_text(folder / "report.md", render_markdown(report))
    write_text(folder / "report.html", render_html(report))
