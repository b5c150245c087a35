"""Contract of the public entry points, tested by properties over generated inputs.

Whatever a user passes -- any dtype, shape, label range, batch size (0 and 1 included),
NaN or infinite values, channels-last layout, inputs that require grad, a network in
train or eval mode, any method -- each entry point ends in one of two ways: a finite,
correct result, or a one-line :class:`~lakt.LaktError` naming the fix. Never another
exception. And for inputs that are valid by construction, never a LaktError either, so
an over-eager check cannot pass the property by refusing everything.

The networks are tiny (width 1/16, one input channel, 3 classes) and the example counts
modest, so these run in the fast layer.
"""
from __future__ import annotations

import functools
import math
import re

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import lakt
from lakt import LaktError
from lakt.core import models
from lakt.core.objective import Objective

K = 3  # classes of the tiny networks


def contract(examples: int):
    """Seeded (the same cases every run, so the fast layer's time is steady), no deadline (a
    shared CPU), no example database (nothing written into the checkout), and the first
    failure shrunk and reported alone (shrinking several is slow and says little more)."""
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    report_multiple_bugs=False, suppress_health_check=[HealthCheck.too_slow])


pytestmark = pytest.mark.usefixtures("one_thread")


@functools.cache
def nets():
    """(student VGG-4, teacher VGG-9), width 1/16, built once per session."""
    generator_state = torch.get_rng_state()
    torch.manual_seed(0)
    student = models.vgg4(K, width=1 / 16, in_channels=1)
    teacher = models.vgg9(K, width=1 / 16, in_channels=1)
    torch.set_rng_state(generator_state)
    return student, teacher


class Batch:
    """Generated inputs, shown in a failing case by what was drawn rather than every value."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, x_valid: bool, valid: bool, drawn: str):
        self.x, self.y, self.x_valid, self.valid, self.drawn = x, y, x_valid, valid, drawn

    def valid_for(self, smallest_image: int) -> bool:
        """Whether the batch is valid for networks that need images of at least this side."""
        return self.valid and self.x.shape[-1] >= smallest_image

    def __iter__(self):
        return iter((self.x, self.y, self.valid))

    def __repr__(self):
        return f"Batch({self.drawn}, valid={self.valid})"


def one_line(err: LaktError) -> bool:
    """The message is one line; its gist is recorded (pytest --hypothesis-show-statistics lists them)."""
    event("refused: " + re.sub(r"[0-9]+|'[^']*'|\([^)]*\)", "#", str(err))[:60])
    return "\n" not in str(err) and str(err).strip() != ""


@st.composite
def batches(draw, min_size: int = 0, max_size: int = 4, smallest_image: int = 8):
    """(x, y, valid): a batch for the tiny networks, and whether every part of it is valid
    (``smallest_image``: the side the networks need, 8 for the VGG-4 student; the VGG-9
    teacher needs 32: :meth:`Batch.valid_for`)."""
    b = draw(st.integers(min_size, max_size))
    channels = draw(st.sampled_from([1, 1, 1, 1, 3]))
    size = draw(st.sampled_from([32, 32, 32, 16, 4]))
    x_dtype = draw(st.sampled_from([torch.float32] * 6 + [torch.float64, torch.float16, torch.int64, torch.uint8]))
    x = (torch.randn(b, channels, size, size, generator=torch.Generator().manual_seed(draw(st.integers(0, 99))))
         .to(x_dtype))
    finite = True
    if b and x.is_floating_point() and draw(st.integers(0, 4)) == 0:
        x[draw(st.integers(0, b - 1)), 0, draw(st.integers(0, size - 1)), 0] = draw(
            st.sampled_from([math.nan, math.inf, -math.inf]))
        finite = False
    if x.dim() == 4 and draw(st.booleans()):
        x = x.contiguous(memory_format=torch.channels_last)
    in_range = draw(st.integers(0, 3)) > 0
    labels = draw(st.lists(st.integers(0, K - 1) if in_range else st.integers(-2, K + 2), min_size=b, max_size=b))
    in_range = all(0 <= v < K for v in labels)
    y_dtype = draw(st.sampled_from([torch.int64] * 5 + [torch.int32, torch.uint8, torch.float32, torch.bool]))
    if y_dtype in (torch.uint8, torch.bool):
        labels = [abs(v) for v in labels]
        in_range = all(0 <= v < K for v in labels)
    y = torch.tensor(labels, dtype=torch.int64).to(y_dtype)
    if draw(st.integers(0, 9)) == 0:  # labels of another length
        y = torch.cat([y, y[:1]]) if b else torch.zeros(1, dtype=y_dtype)
    x_valid = b >= 1 and channels == 1 and size >= smallest_image and x_dtype == torch.float32 and finite
    valid = x_valid and in_range and y_dtype in (torch.int64, torch.int32, torch.uint8) and len(y) == b
    drawn = (f"x {tuple(x.shape)} {x.dtype}{'' if finite else ' non-finite'}"
             f"{' channels-last' if x.dim() == 4 and not x.is_contiguous() else ''}, y {y.tolist()} {y.dtype}")
    return Batch(x, y, x_valid, valid, drawn)


@contract(300)
@given(batch=batches(), method=st.sampled_from(list(lakt.METHODS)), train=st.booleans(),
       requires_grad=st.booleans(), form=st.sampled_from(["plain", "normalized"]),
       output=st.sampled_from(["label", "top"]))
def test_objective_returns_a_finite_loss_or_one_lakt_error(batch, method, train, requires_grad, form, output):
    student, teacher = nets()
    x, y, _ = batch
    student.train(train)
    if requires_grad and x.is_floating_point():
        x.requires_grad_(True)
    spec = lakt.get_method(method)
    valid = batch.valid_for(teacher.min_size if spec.needs_teacher else student.min_size)
    try:
        objective = Objective(spec, teacher if spec.needs_teacher else None, jacobian_form=form, output=output)
    except LaktError as err:  # a combination of options the method does not have: refused before any input
        assert one_line(err), err
        return
    try:
        total, terms = objective(student, x, y)
    except LaktError as err:
        assert one_line(err), err
        assert not valid, f"valid inputs refused: {err}"
        return
    assert valid, "invalid inputs accepted"
    event("accepted")
    assert total.dim() == 0 and torch.isfinite(total), (method, total)
    assert terms["logits"].shape == (len(x), K)
    weighted = sum(v for k, v in terms.items() if k != "logits")
    assert torch.allclose(total.detach(), weighted, rtol=1e-5, atol=1e-6)
    if method == "ce" and not train:
        with torch.no_grad():
            assert torch.allclose(total.detach(), F.cross_entropy(student(x.detach()), y.long()), rtol=1e-5, atol=1e-6)
    total.backward()
    student.zero_grad(set_to_none=True)


def splits():
    """(x, y, valid) as a whole data set for fit / noise_robustness: 0 to 6 examples."""
    return batches(min_size=0, max_size=6)


def train_one_epoch(model, data, objective, batch_size: int, channels_last: bool):
    """``lakt.fit`` for one epoch on the CPU, with its training options as a TrainSpec."""
    spec = lakt.TrainSpec(epochs=1, batch_size=batch_size, device="cpu", channels_last=channels_last)
    return lakt.fit(model, data, objective, spec, progress=False)


@contract(40)
@given(data=splits(), batch_size=st.integers(1, 4), method=st.sampled_from(["ce", "act+jac", "act+fdjac"]),
       channels_last=st.booleans())
def test_fit_trains_or_says_what_is_wrong(data, batch_size, method, channels_last):
    _, teacher = nets()
    x, y, _ = data
    torch.manual_seed(0)
    student = models.vgg4(K, width=1 / 16, in_channels=1)
    spec = lakt.get_method(method)
    valid = data.valid_for(teacher.min_size if spec.needs_teacher else student.min_size)
    objective = Objective(spec, teacher if spec.needs_teacher else None)
    try:
        history = train_one_epoch(student, (x, y), objective, batch_size, channels_last)
    except LaktError as err:
        assert one_line(err), err
        assert not valid, f"valid data refused: {err}"
        return
    assert valid, "invalid data accepted"
    assert len(history) == 1 and math.isfinite(history[0]["loss"])


@contract(60)
@given(data=splits(), sigmas=st.lists(st.sampled_from([0.0, 0.1, 0.5]), min_size=1, max_size=2),
       trials=st.integers(1, 2))
def test_noise_robustness_reports_accuracies_or_says_what_is_wrong(data, sigmas, trials):
    student, _ = nets()
    x, y, valid = data
    try:
        table = lakt.noise_robustness(student, (x, y), sigmas=sigmas, trials=trials)
    except LaktError as err:
        assert one_line(err), err
        assert not valid, f"valid data refused: {err}"
        return
    assert valid, "invalid data accepted"
    records = table
    assert [r["sigma"] for r in records] == sigmas
    assert all(0 <= r["mean"] <= 100 and math.isfinite(r["std"]) for r in records)


@contract(60)
@given(batch=batches(), train=st.booleans(),
       index_is_int=st.booleans())
def test_output_gradient_is_the_input_gradient_or_one_lakt_error(batch, train, index_is_int):
    student, _ = nets()
    x, y, valid = batch
    student.train(train)
    index = (int(y[0]) if len(y) and not y.is_floating_point() else 0) if index_is_int else y
    if index_is_int:  # one output for every example: the labels' length and dtype do not matter
        valid = batch.x_valid and 0 <= index < K
    try:
        grad = lakt.output_gradient(student, x, index)
    except LaktError as err:
        assert one_line(err), err
        assert not valid, f"valid inputs refused: {err}"
        return
    assert valid, "invalid inputs accepted"
    assert grad.shape == x.shape and torch.isfinite(grad).all()


@contract(40)
@given(batch=batches(), output=st.sampled_from(["label", "top"]))
def test_teacher_targets_are_cached_or_one_lakt_error(batch, output):
    _, teacher = nets()
    x, y, _ = batch
    valid = batch.valid_for(teacher.min_size)
    try:
        cache = lakt.TeacherCache.build(teacher, x, y, output)
    except LaktError as err:
        assert one_line(err), err
        assert not valid, f"valid inputs refused: {err}"
        return
    assert valid, "invalid inputs accepted"
    assert cache.logits.shape == (len(x), K) and torch.isfinite(cache.grads).all()
