"""The hardware half's steps, the same for every task: hls, project, rtl (when rtl.enabled), bitstream (open
boards, after rtl), report.

Each module has `run(ctx: BuildContext) -> None`: it reads the export step's hardware contract
(edgekd.contract) and earlier steps' folders through `ctx.dir(name)`, and writes only into `ctx.work`.
The model half's steps (data, teacher, distill, export) come from the task plug-in (edgekd.tasks).
"""

from __future__ import annotations

from edgekd.context import Step


def hardware_steps(model_steps: tuple[str, ...], rtl: bool = False, bitstream: bool = False) -> list[Step]:
    """hls, project, rtl (with `rtl`), bitstream (with `bitstream`, which needs `rtl`) and report, after the task's
    model steps `model_steps` (names, in order)."""
    from edgekd.steps import bitstream as bitstream_step
    from edgekd.steps import hls, project, report
    from edgekd.steps import rtl as rtl_step

    if bitstream and not rtl:
        raise ValueError("the bitstream step needs the rtl step (rtl.enabled)")
    extra = [Step("rtl", rtl_step.run, ("hls", "rtl"), ("export", "hls", "project"),
                  "RTL backend: Verilog, Verilator bit-exact + cycles, Yosys counts")] if rtl else []
    if bitstream:
        extra.append(Step("bitstream", bitstream_step.run, ("hls", "bitstream"), ("rtl",),
                          "open flow: self-test top under Verilator, Yosys, nextpnr-ecp5, ecppack"))
    return [
        # with the rtl step, an open board's fit search (in the hls step) plans the RTL design: rtl.* and the cap
        # bitstream.max_utilisation are its inputs too
        Step("hls", hls.run, ("hls", "rtl", "bitstream") if rtl else ("hls",), ("export",),
             "hls4ml project, C-simulation, QONNX == C-sim, emulator; open boards: the RTL fit search"),
        Step("project", project.run, ("hls",), ("export", "hls"),
             "board project: HLS top, scripts, driver, test vectors"),
        *extra,
        Step("report", report.run, ("name", "task"),
             (*model_steps, "hls", "project", *(s.name for s in extra)),
             "report.json + report.md"),
    ]
