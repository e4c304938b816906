"""edgekd: distil large models into quantization-aware micro-students and deploy them on FPGAs."""

__version__ = "0.1.0"
