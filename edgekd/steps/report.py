"""Step `report`: report.json (source of truth), report.md and report.html rendered from it.

The task plug-in writes it (edgekd.tasks): the model half's figures are its own; the hardware sections
(fit, latency, resources, bit-exactness) come from the shared assemblers in edgekd.report.
"""

from __future__ import annotations

from edgekd.context import BuildContext


def run(ctx: BuildContext) -> None:
    from edgekd.tasks import task_for

    task_for(ctx.config).load().write_report(ctx)

