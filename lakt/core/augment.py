"""Data augmentation on the training device: random crop with zero padding, horizontal flip.

The standard CIFAR recipe (and airbench's, which draws it on the GPU per batch): pad
each image by ``pad`` pixels on every side, take a random 32x32 crop -- a shift of the
image by (dy, dx) in [-pad, pad]^2 with the uncovered border filled -- and flip
horizontally with probability 1/2. Here it is done for a whole batch at once with one
gather (no per-image Python loop) and drawn from a seeded ``torch.Generator`` on the
batch's device, so a run is reproducible and its checkpoint can carry the generator.

The images lakt trains on are already normalised per channel, so the zero fill is
zero *after* normalisation: the training set's mean colour, not black. Used for
teachers and robustness nets only: students stay un-augmented so the
teacher targets cached per training image stay valid.
"""
from __future__ import annotations

import torch


def random_crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """``x`` [B, C, H, W] shifted by a random (dy, dx) in [-pad, pad]^2 (zeros fill in) and
    flipped left-right with probability 1/2, independently per image, from ``generator``."""
    b, _, h, w = x.shape
    device = x.device
    shifts = torch.randint(0, 2 * pad + 1, (2, b), device=device, generator=generator)
    flips = torch.randint(0, 2, (b,), device=device, generator=generator).bool()
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    rows = (shifts[0].view(b, 1) + torch.arange(h, device=device)).view(b, 1, h, 1)
    cols = shifts[1].view(b, 1) + torch.arange(w, device=device)
    cols = torch.where(flips.view(b, 1), cols.flip(1), cols).view(b, 1, 1, w)  # a flip reads columns backwards
    batch = torch.arange(b, device=device).view(b, 1, 1, 1)
    channel = torch.arange(x.shape[1], device=device).view(1, -1, 1, 1)
    out = padded[batch, channel, rows, cols]
    return out.contiguous(memory_format=torch.channels_last) if x.is_contiguous(
        memory_format=torch.channels_last) and not x.is_contiguous() else out


def augment_generator(seed: int, device) -> torch.Generator:
    """The augmentation draws of a run: seeded from its seed, apart from the loader's shuffling."""
    return torch.Generator(device=torch.device(device)).manual_seed(int(seed) * 1_000_003 + 17)
