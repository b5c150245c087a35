"""The paper's VGG-style networks (supplementary, "Network Architectures").

Blocks are 3x3 conv (stride 1) -> BatchNorm -> activation, "M" is 2x2 max-pooling
with stride 2, then global average pooling and a single fully connected layer.

The switches ``batch_norm``, ``bias`` and ``activation`` exist for the
affine-approximation chapter (Section 3): a ReLU net without biases or BatchNorm is
positively homogeneous, so f(x) = grad f(x)^T x exactly; biases, BatchNorm's mean
subtraction and hard-tanh's saturation each add an "overall bias" that breaks it.
"""
from __future__ import annotations

from typing import Sequence, Union

import torch
from torch import nn

from .errors import LaktError, require

Spec = Sequence[Union[int, str]]

VGG9_SPEC: tuple = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
VGG4_SPEC: tuple = (64, "M", 128, "M", 512, "M")

ACTIVATIONS = {"relu": nn.ReLU, "hardtanh": nn.Hardtanh}


def scaled_channels(channels: int, width: float) -> int:
    """Channel count after the width multiplier (at least one channel)."""
    return max(1, int(round(channels * width)))


class VGG(nn.Module):
    """A VGG built from a spec list such as ``[64, "M", 128, "M", 512, "M"]``."""

    def __init__(
        self,
        spec: Spec,
        num_classes: int = 10,
        *,
        in_channels: int = 3,
        width: float = 1.0,
        batch_norm: bool = True,
        bias: bool = True,
        activation: str = "relu",
    ):
        super().__init__()
        require(isinstance(width, (int, float)) and width > 0,
                f"width must be a positive number, got {width!r}; use e.g. width=0.25")
        require(activation in ACTIVATIONS,
                f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
        require(num_classes >= 1 and in_channels >= 1,
                "num_classes and in_channels must be positive integers")
        layers: list[nn.Module] = []
        channels = in_channels
        for item in spec:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                continue
            out = scaled_channels(int(item), width)
            layers.append(nn.Conv2d(channels, out, kernel_size=3, stride=1, padding=1, bias=bias))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(ACTIVATIONS[activation]())
            channels = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes, bias=bias)
        self.spec = tuple(spec)
        self.min_size = 2 ** sum(1 for item in spec if item == "M")  # each 2x2 pooling halves the image

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-softmax activations (logits), shape [B, num_classes]."""
        if x.dim() < 3 or min(x.shape[-2:]) < self.min_size:
            raise LaktError(f"this VGG ({sum(1 for i in self.spec if i == 'M')} poolings) needs inputs "
                            f"[B, C, H, W] of at least {self.min_size}x{self.min_size} pixels, got shape "
                            f"{tuple(x.shape)}; upsample them, e.g. F.interpolate(x, size={self.min_size})")
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def vgg9(num_classes: int = 10, *, in_channels: int = 3, width: float = 1.0, batch_norm: bool = True,
         bias: bool = True, activation: str = "relu") -> VGG:
    """VGG-9, the paper's teacher: 64-M-128-M-256-256-M-512-512-M-512-512-M.

    ``width`` multiplies every layer's channels (0.25: the CPU presets); ``in_channels``
    3 for colour, 1 for digits. ``batch_norm``, ``bias`` and ``activation`` ("relu" or
    "hardtanh") are the affine chapter's switches. Inputs must be at least 32x32 (five
    2x2 poolings).
    """
    return VGG(VGG9_SPEC, num_classes, in_channels=in_channels, width=width, batch_norm=batch_norm, bias=bias,
               activation=activation)


def vgg4(num_classes: int = 10, *, in_channels: int = 3, width: float = 1.0, batch_norm: bool = True,
         bias: bool = True, activation: str = "relu") -> VGG:
    """VGG-4, the paper's student: 64-M-128-M-512-M.

    Options as :func:`vgg9`. Three poolings: inputs of at least 8x8 work; the paper
    uses 32x32.
    """
    return VGG(VGG4_SPEC, num_classes, in_channels=in_channels, width=width, batch_norm=batch_norm, bias=bias,
               activation=activation)


ARCHITECTURES = {"vgg9": vgg9, "vgg4": vgg4}


def build(name: str, num_classes: int, **options) -> VGG:
    """Build an architecture by name ("vgg9" or "vgg4")."""
    require(name in ARCHITECTURES, f"unknown model {name!r}; choose one of {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[name](num_classes, **options)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars (conv/fc weights and biases, BN affine)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
