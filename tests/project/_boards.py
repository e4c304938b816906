"""Shared settings of the per-board tests (the tiny cell build and a custom board file)."""

from edgekd.hw import list_boards, load_board

TINY = {
    "name": "tiny",
    "data": {"synthetic": {"n_train": 360, "n_test": 120, "seed": 1}},
    "teacher": {"width": 8, "epochs": 1, "input_size": 32, "batch_size": 64},
    "student": {"input_size": 16, "channels": [4, 4], "kernel_sizes": [3, 3]},
    "distill": {"epochs": 2, "batch_size": 64, "qat_epochs": 1, "baseline": False},
    "hls": {"verify_samples": 12},  # the frame grabber's sort trigger: the default, chosen on validation
}
CUSTOM_BOARD = {
    "name": "my-zu3eg",
    "part": "xczu3eg-sbva484-1-e",
    "default_clock_mhz": 150,
    "interface": "axi_stream_dma",
    "vendor_flow": "vivado",
    "resources": {"lut": 70560, "ff": 141120, "dsp": 360, "bram_18k": 432},
}
# boards whose project a lab builds with vendor tools (open boards: tests/openfpga)
BOARDS = [b for b in list_boards() if not load_board(b).is_open]
