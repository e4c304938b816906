"""Built-in ResNet teacher for 64x64 images (and small images at their own size: `stage_strides`) (1 channel, or 3 for colour), sized to train on a few CPU cores.

A two-conv stem (full resolution, then stride 2) and four stages of basic residual blocks (widths w, 2w, 4w, 8w, each stage halving
the resolution) keep the cost near 20M MACs per image while holding ~1.2M parameters at w=32,
so it is much larger than the students it teaches. Global average pooling makes it insensitive to
where the cell sits in the frame.
"""

from __future__ import annotations

import torch
from torch import nn

from edgekd.config import TeacherConfig
from edgekd.registry import TEACHERS


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


def stage_strides(input_size: int | None) -> tuple[int, list[int]]:
    """(stem stride, stride of each of the 4 stages) for square inputs of `input_size`.

    From 32 px up (the cell teacher's 64 px): the stem halves the image and every stage halves it again,
    64 -> 32 -> 16, 8, 4, 2. A smaller image (an image folder of 8 or 16 px images, read at its own size) keeps its
    resolution in the stem, and a stage halves only a map of at least 4 px: 8 -> 8 -> 4, 2, 2, 2, rather than
    shrinking to one pixel after the second stage. The parameters are the same either way.
    """
    if input_size is None or input_size >= 32:
        return 2, [2, 2, 2, 2]
    side, strides = input_size, []
    for _ in range(4):
        strides.append(2 if side >= 4 else 1)
        side = -(-side // strides[-1])
    return 1, strides


class ResNetTeacher(nn.Module):
    def __init__(self, num_classes: int, width: int = 32, in_channels: int = 1, input_size: int | None = None) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.num_classes = num_classes
        # full-resolution first conv keeps the fine texture (granules, chromatin) that a strided
        # first conv would alias away; the second conv then halves the resolution
        half = max(width // 2, 1)
        stem_stride, strides = stage_strides(input_size)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, half, 3, 1, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True),
            nn.Conv2d(half, width, 3, stem_stride, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
        )
        widths = [width, 2 * width, 4 * width, 8 * width]
        stages, c_in = [], width
        for c_out, stride in zip(widths, strides):
            stages.append(BasicBlock(c_in, c_out, stride=stride))
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(c_in, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        # zero the last BN of each block so every block starts as identity (stabler short training)
        for block in self.stages:
            nn.init.zeros_(block.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.head(torch.flatten(self.pool(x), 1))


@TEACHERS.register("resnet")
def resnet_teacher(num_classes: int, cfg: TeacherConfig, in_channels: int = 1) -> nn.Module:
    """The ResNet teacher for images of `in_channels` channels (1 grey, 3 colour: `data.channels`)."""
    return ResNetTeacher(num_classes, width=cfg.width, in_channels=in_channels, input_size=cfg.input_size)
