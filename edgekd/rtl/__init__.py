"""The RTL backend: the hardware contract's network as synthesizable Verilog, simulated and synthesised here.

A second hardware backend beside hls4ml, entered from the same hardware contract (edgekd.contract). Per layer
the arithmetic (products, bias, ReLU, requantisation) is a pipelined constant-weight network traced with
alkaid (edgekd.rtl.kernels); around it, streaming templates this project owns (edgekd.rtl.templates: line
buffer + window, max pool, flatten, pixel unpacking) and an AXI4-Stream top (edgekd.rtl.generate).
Verilator measures it (edgekd.rtl.sim), Yosys synthesises it (edgekd.rtl.synth).

Interface (for wrappers such as a board self-test top):

    from edgekd.rtl.generate import generate_rtl
    manifest = generate_rtl(contract, out_dir, family="xcu" | "xcup" | "xc7" | "ecp5", pixels_per_beat=1)

writes into `out_dir` (build/<name>/rtl/ in a build):

    rtl.json        the manifest (edgekd.io.write_json), returned as a dict:
        top                 module name of the top
        verilog             Verilog files relative to out_dir, in compile order (the top last)
        family              synthesis family
        ports               clk, rst (synchronous, active high), s_axis_tdata[in_width-1:0], s_axis_tvalid,
                            s_axis_tready, s_axis_tlast, s_axis_tuser (first beat of an image),
                            m_axis_tdata[out_width-1:0], m_axis_tvalid, m_axis_tready, m_axis_tlast
        in_width, out_width bits of s_axis_tdata / m_axis_tdata
        beats_per_image     s_axis beats per image; pixels_per_beat: network pixels per beat
        outputs_per_image   m_axis beats per image (TLAST on the last one)
        input_layout, output_layout  element bits, signedness, fractional bits and order of the words
        vectors             {"file": "vectors.npz", "n": N}: arrays `inputs` (N, beats_per_image, ceil(in_width/64))
                            and `outputs` (N, outputs_per_image, ceil(out_width/64)), uint64, word j = bits
                            [64j +: 64]: the verification sample's beats and the expected (QONNX) output beats
        stages              every stage with its initiation interval (cycles per pixel) and latency; a padded
                            conv's window also its pads (top, left, bottom, right) and flush_beats
        frame_gap_cycles    idle clocks the top leaves after every image (s_axis_tready low) for the padded
                            windows' flush beats (their sum; 0 without padding)
        simulation          (after edgekd.rtl.sim.run_sim) exact, n, latency_cycles, interval_cycles, ...
        synthesis           (after edgekd.rtl.synth.synthesize) lut, ff, carry, dsp, bram, tool, seconds

The top accepts one beat per clock when m_axis is not stalled; backpressure on m_axis stalls the whole
network (s_axis_tready follows it). Framing counts beats and restarts at s_axis_tuser. With padded convolutions
s_axis_tready also stays low for frame_gap_cycles clocks after each image's last beat: a padded window emits its
last outputs (the bottom/right border) from internal beats on idle clocks, so the interval is H*W + the gap.

Lanes (`generate_rtl(..., lanes=L)`, edgekd.rtl.lanes): the first layers take L adjacent pixels per clock (one
beat of L pixels per clock, a window and a kernel instance per lane) down to the first horizontal stride of at
least L (a pool), then one pixel per clock: the interval is H*W/L cycles. The manifest's "lanes" says L.

Reuse (`generate_rtl(..., reuse=R or {layer: R})`, config rtl.reuse, edgekd.rtl.reuse): a dense layer with R > 1
is a time-multiplexed kernel (its products over R cycles on ceil(n_in*n_out/R) multipliers, weights in a ROM,
exact accumulators, the same alkaid bias + requantisation): the stage's "ii" is R and the top starts an image at
most every max(R) clock enables (s_axis_tready low on a first beat until then); the manifest's "reuse" gives R
per dense layer and "interval_cycles_per_image" the resulting interval.

The camera top (edgekd.rtl.pixeltop, `generate_pixel_top`; the rtl step writes it on pixel-stream boards):
``edgekd_pixel_top`` takes the frame grabber's beats (P pixels per clock, TUSER = first beat of a region, TLAST
= end of each line), packs k x k blocks, runs the network and emits one decision word per region (the HLS
board project's layout and framing rules). The manifest's "pixel_top" section is a sub-manifest (top,
verilog, in_width, out_width, beats_per_image, tlast_every, decision_word, vectors = vectors_pixel.npz with
camera beats, expected decision words and the network's expected output words at the monitor port
net_tdata/net_fire) and, after simulation, its "simulation". Yosys synthesises the camera top when present.
"""

from edgekd.rtl.network import RTLUnsupportedError

__all__ = ["RTLUnsupportedError"]
