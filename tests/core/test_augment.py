"""Crop + flip augmentation: seeded, vectorised, shifts within +-4 filled with zeros, flips."""
import torch

from lakt.core.augment import augment_generator, random_crop_flip


def _images(b=64):
    # distinct, non-zero pixel values, so every output pixel can be traced to its source
    return (torch.arange(b * 2 * 32 * 32, dtype=torch.float64) + 1).view(b, 2, 32, 32)


def _explain(out, x):
    """(dy, dx, flipped) that turn image x into out under a 4-pixel zero-padded crop, or None."""
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for flipped in (False, True):
        source = padded.flip(-1) if flipped else padded
        for dy in range(9):
            for dx in range(9):
                if torch.equal(source[:, dy:dy + 32, dx:dx + 32], out):
                    return dy - 4, dx - 4, flipped
    return None


def test_same_seed_same_batch_other_seed_other_batch():
    x = _images()
    a = random_crop_flip(x, torch.Generator().manual_seed(1))
    b = random_crop_flip(x, torch.Generator().manual_seed(1))
    c = random_crop_flip(x, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(random_crop_flip(x, augment_generator(3, "cpu")),
                       random_crop_flip(x, augment_generator(3, "cpu")))


def test_every_image_is_a_zero_filled_shift_within_4_pixels_maybe_flipped():
    x = _images()
    out = random_crop_flip(x, torch.Generator().manual_seed(0))
    found = [_explain(o, xi) for o, xi in zip(out, x)]
    assert all(f is not None for f in found)
    shifts = {(dy, dx) for dy, dx, _ in found}
    flips = [f for _, _, f in found]
    assert len(shifts) > 10 and 0 < sum(flips) < len(flips)  # shifts and flips vary per image
    assert max(max(abs(dy), abs(dx)) for dy, dx in shifts) <= 4
    shifted = [i for i, (dy, dx, _) in enumerate(found) if (dy, dx) != (0, 0)]
    assert all((out[i] == 0).any() for i in shifted)  # the uncovered border is zeros


def test_the_shift_distribution_covers_all_81_offsets():
    x = torch.zeros(4000, 1, 32, 32)
    x[:, :, 16, 16] = 1  # one marked pixel: where it lands gives the shift
    out = random_crop_flip(x, torch.Generator().manual_seed(0))
    where = out.flatten(1).argmax(1)
    rows, cols = where // 32, where % 32
    assert set(rows.tolist()) == set(range(12, 21))  # row 16 - dy for every dy in [-4, 4]
    # un-flipped: column 16 - dx in [12, 20]; flipped (column 31 - c): 15 + dx in [11, 19]
    assert set(cols.tolist()) == set(range(11, 21))
