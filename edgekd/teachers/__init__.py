"""Teachers: the built-in ResNet (trained here) and runners for loaded checkpoints, TorchScript and ONNX."""

from edgekd.teachers import resnet  # noqa: F401  (registers the built-in architectures in TEACHERS)
