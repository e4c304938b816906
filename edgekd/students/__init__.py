"""Quantization-aware micro-students; importing this package registers them in STUDENTS."""

from edgekd.students import cell_cnn  # noqa: F401  (registers "cell_cnn")
from edgekd.students import wav2small  # noqa: F401  (registers "wav2small", "wav2small_hw")
