"""Board project: HLS top wrappers, Vivado/Vitis scripts, host driver and test vectors for a lab.

- `generate.py`: renders `firmware_templates/` (jinja2, StrictUndefined) into a self-contained folder.
- `csim.py`: compiles the project's own C testbenches with g++ and the ap_types headers (emulated csim_design).
- `trigger.py`: the frame grabber's sort decision (class, score, trigger) and its latency.
- `tclcheck.py`: runs a generated Tcl script under tclsh with the vendor-command stubs of `tclstubs.py`
  (block-design pins, IP catalog, export layouts, run outputs).
- `vendorcli.py`: HLS port names of a top, the v++ link-config check, and stand-ins for the vendor tools'
  command lines (so the generated Makefile can run for real under test).
"""

from edgekd.project.generate import ProjectError, generate_project, templates_dir

__all__ = ["ProjectError", "generate_project", "templates_dir"]
