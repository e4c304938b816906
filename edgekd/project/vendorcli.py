"""Stand-ins for the vendor tools' command lines, the HLS port names of a top function, and the v++ link check.

- `top_ports(top, sources)`: the RTL ports HLS gives the top's C arguments (its INTERFACE pragmas, and HLS's
  renaming of names that are reserved words in Verilog/VHDL: `in` -> `in_r`, UG1399). The Tcl stubs'
  `csynth_design` calls it (`python -m edgekd.project.vendorcli interfaces TOP FILE...`).
- `check_link_config(cfg, xo_files)`: every `nk=` kernel is in a kernel object and every `sp=CU.ARG:...`
  names a declared compute unit and an argument of its kernel, as v++ requires.
- `python -m edgekd.project.vendorcli tool NAME ARGS...`: accepts exactly the command lines the supported
  releases accept (`vitis_hls -f SCRIPT`, `vitis-run --mode hls --tcl SCRIPT`, `vivado -mode batch -source
  SCRIPT`, `v++ -l ...`), then runs the script under the Tcl stubs (or checks the link). A test puts small
  wrappers named like the tools on PATH and runs the generated Makefile for real.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

__all__ = ["RESERVED_PORT_NAMES", "LinkConfigError", "ToolUsageError", "top_ports", "check_link_config",
           "read_xo_kernels", "main"]

#: C argument names HLS renames with a `_r` suffix (reserved in Verilog, SystemVerilog or VHDL)
RESERVED_PORT_NAMES = frozenset("""
always and assign begin buf case default defparam disable else end endcase endfunction endmodule endtask event
for force forever fork function if initial inout input integer join module nand negedge nor not or output
parameter posedge real reg repeat signed task time wait while wire xor in out
abs access after alias all architecture array assert attribute block body buffer bus component configuration
constant downto elsif entity exit file generate generic group guarded impure inertial is label library linkage
literal loop map mod new next null of on open others package port postponed procedure process pure range record
register reject rem report return rol ror select severity shared signal sla sll sra srl subtype then to
transport type unaffected units until use variable when with xnor
bit byte logic string
""".split())


class LinkConfigError(ValueError):
    """link.cfg names a kernel, compute unit or argument the kernel objects do not have."""


class ToolUsageError(ValueError):
    """A command line the vendor tool would reject."""


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def top_ports(top: str, sources: list[Path | str]) -> list[tuple[str, str, str]]:
    """[(C argument, RTL port, mode)] of `top`'s definition in `sources` (mode from `#pragma HLS INTERFACE`:
    axis, m_axi, s_axilite, ... ; ap_none when there is none)."""
    for src in sources:
        path = Path(src)
        if path.suffix not in (".cpp", ".cc", ".c"):
            continue
        text = _strip_comments(path.read_text())
        m = re.search(r"\bvoid\s+" + re.escape(top) + r"\s*\(([^)]*)\)\s*\{", text)
        if not m:
            continue
        body_start = m.end()
        depth, i = 1, body_start
        while depth and i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        body = text[body_start:i]
        args = [a.strip() for a in m.group(1).split(",") if a.strip() and a.strip() != "void"]
        modes: dict[str, str] = {}
        for mode, port in re.findall(r"#pragma\s+HLS\s+INTERFACE\s+(?:mode=)?(\w+)\s+port=(\w+)", body):
            modes.setdefault(port, mode)  # the first pragma names the data interface (m_axi before s_axilite)
        out = []
        for a in args:
            name = re.findall(r"[A-Za-z_]\w*", a)[-1]
            port = f"{name}_r" if name in RESERVED_PORT_NAMES else name
            out.append((name, port, modes.get(name, "ap_none")))
        return out
    raise ValueError(f"no definition of '{top}(...)' in {', '.join(str(s) for s in sources)}")


def read_xo_kernels(xo_files: list[Path | str]) -> dict[str, list[str]]:
    """{kernel: [argument names]} from kernel objects (the stubs' `.xo`; a real one is a zip with kernel.xml)."""
    kernels: dict[str, list[str]] = {}
    for xo in xo_files:
        lines = Path(xo).read_text(errors="replace").splitlines()
        if not lines or lines[0] != "edgekd-stub-xo":
            raise LinkConfigError(f"{xo}: not a kernel object written by export_design")
        name = None
        for line in lines[1:]:
            parts = line.split()
            if parts[:1] == ["kernel"]:
                name = parts[1]
                kernels[name] = []
            elif parts[:1] == ["arg"] and name is not None:
                kernels[name].append(parts[1])
    return kernels


def check_link_config(cfg: Path | str, kernels: dict[str, list[str]]) -> dict[str, str]:
    """Check `nk=` and `sp=` lines of a v++ link config against `kernels`; returns {compute unit: kernel}."""
    cus: dict[str, str] = {}
    sps: list[tuple[str, str, str]] = []
    for n, raw in enumerate(Path(cfg).read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("["):
            continue
        key, _, value = line.partition("=")
        if key == "nk":
            parts = value.split(":")
            if len(parts) < 2 or not parts[1].isdigit():
                raise LinkConfigError(f"{cfg}:{n}: nk={value}: expected KERNEL:COUNT[:CU1.CU2...]")
            kernel, count = parts[0], int(parts[1])
            if kernel not in kernels:
                raise LinkConfigError(f"{cfg}:{n}: nk names kernel '{kernel}'; the kernel objects have {sorted(kernels)}")
            names = parts[2].split(".") if len(parts) > 2 else [f"{kernel}_{i + 1}" for i in range(count)]
            if len(names) != count:
                raise LinkConfigError(f"{cfg}:{n}: nk={value}: {count} compute units but {len(names)} names")
            cus.update({cu: kernel for cu in names})
        elif key == "sp":
            target, _, mem = value.partition(":")
            cu, _, arg = target.partition(".")
            sps.append((cu, arg, f"{cfg}:{n}"))
            if not mem:
                raise LinkConfigError(f"{cfg}:{n}: sp={value}: no memory bank after ':'")
        elif key == "kernel_frequency" and not re.fullmatch(r"\d+(\.\d+)?|0:\d+(\|1:\d+)?", value):
            raise LinkConfigError(f"{cfg}:{n}: kernel_frequency={value} is not a frequency in MHz")
    for cu, arg, where in sps:
        if cu not in cus:
            raise LinkConfigError(f"{where}: sp names compute unit '{cu}', not declared by nk= ({sorted(cus)})")
        if arg not in kernels[cus[cu]]:
            raise LinkConfigError(f"{where}: sp names argument '{arg}' of {cu}; kernel {cus[cu]} has "
                                  f"{kernels[cus[cu]]}")
    return cus


def _script_after(args: list[str], flag: str, tool: str) -> str:
    if args.count(flag) != 1:
        raise ToolUsageError(f"{tool}: expected one {flag} SCRIPT")
    i = args.index(flag)
    if i + 1 >= len(args) or args[i + 1].startswith("-"):
        raise ToolUsageError(f"{tool}: {flag} must be followed by the Tcl script, got {args[i + 1:i + 2]}")
    return args[i + 1]


def parse_tool_command(tool: str, args: list[str]) -> dict:
    """What a tool would do with `args`: {"script": path} for the Tcl tools, the link for v++; else raises."""
    if tool == "vitis_hls":
        if len(args) != 2:
            raise ToolUsageError(f"vitis_hls: expected '-f SCRIPT', got {args}")
        return {"script": _script_after(args, "-f", tool)}
    if tool == "vitis-run":
        script = _script_after(args, "--tcl", tool)
        rest = [a for a in args if a != script and a != "--tcl"]
        if rest != ["--mode", "hls"]:
            raise ToolUsageError(f"vitis-run: expected '--mode hls --tcl SCRIPT', got {args}")
        return {"script": script}
    if tool == "vivado":
        script = _script_after(args, "-source", tool)
        i = args.index("-mode") if "-mode" in args else -1
        if i < 0 or args[i + 1:i + 2] != ["batch"]:
            raise ToolUsageError(f"vivado: expected '-mode batch', got {args}")
        allowed = {"-mode", "batch", "-source", script, "-nojournal", "-notrace"}
        extra = [a for j, a in enumerate(args) if a not in allowed and not (j > 0 and args[j - 1] in ("-log", "-journal"))
                 and a not in ("-log", "-journal")]
        if extra:
            raise ToolUsageError(f"vivado: unexpected arguments {extra}")
        return {"script": script}
    if tool == "v++":
        if "-l" not in args and "--link" not in args:
            raise ToolUsageError("v++: this project only links (-l)")
        valued = {"-t", "--target", "--platform", "-f", "--config", "-o", "--output", "--report_dir", "--log_dir"}
        opts, inputs, j = {}, [], 0
        while j < len(args):
            a = args[j]
            if a in valued:
                if j + 1 >= len(args):
                    raise ToolUsageError(f"v++: {a} needs a value")
                opts[a] = args[j + 1]
                j += 2
                continue
            if a.startswith("-"):
                if a not in ("-l", "--link"):
                    raise ToolUsageError(f"v++: unknown option {a}")
            else:
                inputs.append(a)
            j += 1
        for need in (("-t", "--target"), ("--platform", "-f"), ("--config",), ("-o", "--output")):
            if not any(n in opts for n in need):
                raise ToolUsageError(f"v++: missing {need[0]}")
        if not inputs or not all(i.endswith(".xo") for i in inputs):
            raise ToolUsageError(f"v++ -l: expected kernel objects (.xo), got {inputs}")
        return {"config": opts["--config"], "xo": inputs, "output": opts.get("-o", opts.get("--output"))}
    raise ToolUsageError(f"no stand-in for tool '{tool}'")


def run_tool(tool: str, args: list[str]) -> None:
    """Run `tool args` as the stand-in: usage check, then the Tcl script under the stubs or the link check."""
    from edgekd.project.tclcheck import dry_run_tcl

    cmd = parse_tool_command(tool, args)
    if "script" in cmd:
        if not Path(cmd["script"]).is_file():
            raise ToolUsageError(f"{tool}: no such script {cmd['script']}")
        dry_run_tcl(cmd["script"], Path.cwd())
        return
    for xo in cmd["xo"]:
        if not Path(xo).is_file():
            raise ToolUsageError(f"v++: no such kernel object {xo}")
    check_link_config(cmd["config"], read_xo_kernels(cmd["xo"]))
    out = Path(cmd["output"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("edgekd-stub-xclbin\n")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) >= 2 and argv[0] == "interfaces":
        for arg, port, mode in top_ports(argv[1], argv[2:]):
            print("{" + f"{arg} {port} {mode}" + "}")
        return 0
    if len(argv) >= 2 and argv[0] == "tool":
        try:
            run_tool(argv[1], argv[2:])
        except Exception as err:  # noqa: BLE001 - a tool prints its error and exits non-zero
            print(f"ERROR: {err}", file=sys.stderr)
            return 1
        return 0
    print("usage: python -m edgekd.project.vendorcli interfaces TOP FILE... | tool NAME ARGS...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
