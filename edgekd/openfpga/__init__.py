"""The open FPGA flow for Lattice ECP5 boards (`toolchain: open`): no vendor tools.

- `selftest`: the self-test top (vectors in block RAM, every output compared, a hardware cycle counter, LEDs
  and a UART line) around the RTL backend's network, and the reader of its UART line;
- `lpf`: the board's LPF (pins and the clock constraint);
- `verilator`: the self-test simulated with Verilator (it must pass before a bitstream is written);
- `pnr`: Yosys `synth_ecp5`, nextpnr-ecp5 (seeded, clock-constrained, progress shown, Fmax and utilisation
  from its JSON report) and `ecppack`, the yowasp builds from PyPI;
- `standin`: a small network with the RTL backend's ports and exactly known outputs, for tests and benchmarks;
- `host`: `python -m edgekd.openfpga.host PORT_OR_FILE` reads the board's result line.
"""
