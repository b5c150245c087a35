"""Attention transfer (Zagoruyko & Komodakis, ICLR 2017): where the maps come from.

The paper cites attention transfer as the other way of using "Jacobians as attention";
lakt adds it as a baseline (``at+ce``). A spatial attention map of an activation
A [B, C, H, W] is Q = sum_c A_c^2, flattened and L2-normalised per sample; the loss is
beta/2 * sum_j mean ||Q_S^j - Q_T^j||^2 over pairs j of teacher and student blocks whose
outputs have the same spatial size (:func:`lakt.core.losses.attention_transfer`).

Pairs chosen for the paper's nets: the last activation before each of the first three
max-poolings -- VGG-9's conv64 (32x32), conv128 (16x16) and second conv256 (8x8) against
VGG-4's conv64 (32x32), conv128 (16x16) and conv512 (8x8). These are the ends of the
stages both nets share (VGG-4 has only three), taken before pooling as the authors take
ResNet group outputs at full resolution. Channel counts may differ: Q sums over them.

The maps are read with forward hooks, so the networks' forward is unchanged. The
teacher's maps of an un-augmented image never change, so :class:`AttentionCache`
computes them once per training image.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from .errors import require

STAGES = 3  # pairs of blocks matched between VGG-9 and VGG-4 (32x32, 16x16, 8x8)


def attention_map(activation: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Q = sum over channels of A^2, flattened to [B, H*W] and scaled to unit L2 norm per sample."""
    if activation.dtype in (torch.float16, torch.bfloat16):  # autocast: the loss arithmetic in float32
        activation = activation.float()
    return F.normalize(activation.pow(2).sum(dim=1).flatten(1), dim=1, eps=eps)


def stage_ends(model: nn.Module, stages: int = STAGES) -> list[nn.Module]:
    """The modules whose outputs end the first ``stages`` stages: the ones right before each max-pool."""
    layers = list(model.features)
    ends = [layers[i - 1] for i, layer in enumerate(layers) if isinstance(layer, nn.MaxPool2d) and i > 0]
    require(len(ends) >= stages, f"the network has {len(ends)} pooling stages, attention transfer pairs {stages}")
    return ends[:stages]


@contextmanager
def recording(model: nn.Module, stages: int = STAGES):
    """Within the block, each forward of ``model`` fills the yielded list with its stage attention maps."""
    maps: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: maps.append(attention_map(out)))
             for m in stage_ends(model, stages)]
    try:
        yield maps
    finally:
        for h in hooks:
            h.remove()


@torch.no_grad()
def teacher_maps(teacher: nn.Module, x: torch.Tensor, stages: int = STAGES) -> list[torch.Tensor]:
    """The frozen teacher's attention maps at ``x`` (detached)."""
    with recording(teacher, stages) as maps:
        teacher(x)
    return list(maps)


class AttentionCache:
    """The teacher's attention maps per training image, computed once (valid without augmentation).

    Stored concatenated, [N, sum_j H_j W_j] (1,344 floats per 32x32 image at 3 stages),
    on the images' device; indexed by the dataset positions the loader yields.
    """

    def __init__(self, maps: torch.Tensor, sizes: list[int]):
        self.maps, self.sizes = maps, sizes

    @classmethod
    def build(cls, teacher: nn.Module, x: torch.Tensor, stages: int = STAGES, batch_size: int = 256):
        teacher.eval()
        chunks = [torch.cat(teacher_maps(teacher, x[i:i + batch_size], stages), dim=1)
                  for i in range(0, len(x), batch_size)]
        sizes = [m.shape[1] for m in teacher_maps(teacher, x[:2], stages)]
        return cls(torch.cat(chunks), sizes)

    def __getitem__(self, positions: torch.Tensor) -> list[torch.Tensor]:
        return list(torch.split(self.maps[positions.to(self.maps.device)], self.sizes, dim=1))
