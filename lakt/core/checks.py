"""One validation layer for what users hand to lakt: networks, batches, data sets, devices.

Someone using the losses in their own loop hands over two networks, a batch and its
labels; when these do not fit together, PyTorch fails deep inside a convolution or a
``gather`` ("Input type (float) and bias type (double) should be the same", "Target 10
is out of bounds"), or -- worse -- does not fail: a Jacobian term compares input
gradients, which have the input's shape whatever the output count, so a 10-class
student trains against a 12-class teacher without a word, a NaN image becomes a NaN
loss blamed on the learning rate, and an empty split scores 0.0 +- 0.0. These checks
say what does not fit and how to fix it, as one-line
:class:`~lakt.core.errors.LaktError`\\ s, so every public entry point (the objective,
``fit``, ``noise_robustness``, the data loaders, the CLI, the chapters' parameters)
says the same thing in the same words.

They are cheap enough to run every step: no extra forward pass (a label is checked
against k by a forward hook during the passes the step makes anyway), and the values
of a batch -- all inputs finite, smallest and largest label -- are read with one
host synchronisation, not one per check (about 0.1% of a CE step of VGG-4 at width
1/4, batch 64, on one CPU thread). The slow work of finding *which* example is
bad is done only once a check has failed.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import torch
from torch import nn

from .errors import LaktError, require

# (labels returned by the last check_inputs in this thread, their largest value), for
# output_checks to compare with the networks' output count k (known only once a network
# has run) without reading the labels from the device a second time.
_CHECKED: ContextVar[tuple[torch.Tensor, int] | None] = ContextVar("lakt_checked_labels", default=None)


def _first_param(model: nn.Module | None):
    if model is None:
        return None
    return next((p for p in model.parameters() if p.is_floating_point()), None)


def _input_channels(model: nn.Module) -> int | None:
    """The channel count a lakt VGG expects (its first convolution's), else None (unknown)."""
    from .models import VGG  # lazy: models needs nothing from here, but keep the import graph flat

    if isinstance(model, VGG):
        return model.features[0].in_channels
    return None


def first_non_finite(x: torch.Tensor) -> tuple[int, str]:
    """(index of the first example of ``x`` holding a NaN or an infinity, "a NaN" or "an infinity")."""
    flat = x.detach().reshape(len(x), -1)
    bad = ~torch.isfinite(flat)
    index = int(bad.any(dim=1).nonzero()[0, 0])
    kind = "a NaN" if bool(torch.isnan(flat[index]).any()) else "an infinity"
    return index, kind


def _non_finite(x: torch.Tensor, what: str, fix: str) -> LaktError:
    index, kind = first_non_finite(x)
    return LaktError(f"{what}: example {index} (of {len(x)}) holds {kind}; inputs must be finite -- {fix}")


def check_labels_in_range(label_max: int | None, outputs: int, who: str) -> None:
    """A label ``label_max`` must index one of ``outputs`` logits."""
    if label_max is not None and outputs is not None:
        require(label_max < outputs,
                f"label {label_max} is out of range for the {who}'s {outputs} outputs; labels are class indices "
                f"0..{outputs - 1} -- relabel the data, or build the networks with num_classes={label_max + 1}")


def check_model_input(model: nn.Module | None, x, role: str = "model", what: str = "inputs",
                      same_device: bool = True) -> None:
    """``x`` as a batch for ``model``: a float tensor [B, ...] with B >= 1, on the model's device
    (unless ``same_device=False``: data the caller moves batch by batch) and dtype, with the
    channel count a lakt VGG expects. Shape and type only: no host sync."""
    require(isinstance(x, torch.Tensor), f"{what} must be a tensor [B, C, H, W], got {type(x).__name__}")
    require(x.is_floating_point(), f"{what} are {x.dtype}; convert them to float and normalise them as the "
                                   "networks expect (e.g. x.float() / 255, then per-channel mean/std)")
    require(x.dim() >= 2, f"{what} have shape {tuple(x.shape)}; pass a batch [B, C, H, W] (x.unsqueeze(0) for "
                          "one image)")
    require(len(x) > 0, f"{what} are an empty batch (shape {tuple(x.shape)}); pass at least one example")
    p = _first_param(model)
    if p is None:
        return
    require(not same_device or p.device == x.device, f"the {role} is on {p.device} but the {what} are on "
                                                     f"{x.device}; move both to one device ({role}.to(x.device))")
    require(p.dtype == x.dtype, f"the {role}'s parameters are {p.dtype} but the {what} are {x.dtype}; "
                                f"use one dtype for both ({role}.to(x.dtype), or x.to({p.dtype}))")
    channels = _input_channels(model)
    if channels is not None:
        require(x.dim() == 4 and x.shape[1] == channels,
                f"the {role} takes images [B, {channels}, H, W] but the {what} have shape {tuple(x.shape)}; "
                f"pass {channels}-channel images, or build the {role} with in_channels={x.shape[1] if x.dim() == 4 else '...'}")


def check_labels(y, batch: int) -> torch.Tensor:
    """Labels as int64 class indices, one per example (any integer dtype is accepted). No host sync."""
    require(isinstance(y, torch.Tensor), f"labels must be a tensor of class indices, got {type(y).__name__}")
    require(not y.is_floating_point() and not y.is_complex() and y.dtype != torch.bool,
            f"labels are {y.dtype}; pass class indices as an integer tensor (e.g. y.long()), not one-hot or scores")
    require(y.dim() == 1 and len(y) == batch,
            f"labels have shape {tuple(y.shape)} for {batch} inputs; pass one class index per input, shape [B]")
    return y.long()


def _values(x: torch.Tensor, y: torch.Tensor) -> tuple[bool, int, int]:
    """(all of x finite, smallest label, largest label), read with one host sync.

    Finiteness is read from the sum of x -- a NaN or an infinity anywhere makes it
    non-finite -- which costs a twentieth of an element-wise ``isfinite`` pass (that
    allocates a mask as large as x); only a non-finite sum, which a sum of huge finite
    values can also give, is confirmed element by element.
    """
    summary = torch.stack([torch.isfinite(x.detach().sum()).long(), y.min(), y.max()])
    finite, low, high = summary.tolist()
    if not finite:
        finite = bool(torch.isfinite(x.detach()).all())
    return bool(finite), low, high


def check_batch(model: nn.Module | None, x, y, role: str = "model",
                also: nn.Module | None = None, also_role: str = "teacher") -> tuple[torch.Tensor, int]:
    """A batch (inputs, labels) for ``model`` (and for ``also``, a second network fed the same
    inputs): types, shapes, devices and dtypes first (no sync), then the values -- every input
    finite, no label negative -- read with one host sync. Returns (labels as int64, largest label).

    The largest label is for a check against the output count k, known once a network has
    run: :func:`output_checks` or :func:`labels_fit_outputs`.
    """
    check_model_input(model, x, role)
    y = check_labels(y, len(x))
    require(y.device == x.device, f"labels are on {y.device} but inputs on {x.device}; move both to one device")
    if also is not None:
        check_model_input(also, x, also_role)
    finite, low, high = _values(x, y)
    if not finite:
        raise _non_finite(x, "inputs", "check how the batch was loaded and normalised (a channel with std 0?)")
    require(low >= 0, f"label {low} is negative; labels are class indices 0..k-1")
    return y, high


def check_inputs(student: nn.Module, teacher: nn.Module | None, x, y) -> torch.Tensor:
    """Check a batch against the networks; return the labels as int64 (any integer dtype is accepted).

    :func:`check_batch` for the student and the teacher, at one host sync. The largest
    label is kept for :func:`output_checks`, which compares it with the networks' output count.
    """
    y, high = check_batch(student, x, y, "student", also=teacher)
    _CHECKED.set((y, high))
    return y


def _label_max(labels) -> int | None:
    """The largest label: given as an int, read from a labels tensor (for free when it is the one
    :func:`check_inputs` returned last), or, for None, that last checked batch's."""
    checked = _CHECKED.get()
    _CHECKED.set(None)
    if labels is None:
        return checked[1] if checked is not None else None
    if isinstance(labels, int):
        return labels
    if checked is not None and checked[0] is labels:
        return checked[1]
    return int(labels.max()) if labels.numel() else None


@contextmanager
def output_checks(student: nn.Module, teacher: nn.Module | None, teacher_outputs: int | None = None,
                  labels=None):
    """Within the block, every forward of ``student`` / ``teacher`` must return logits [B, k]
    with the same k for both (``teacher_outputs``: k of cached teacher targets), and every
    label must be below k.

    ``labels``: the batch's labels (the tensor :func:`check_inputs` returned: its largest
    value is then known without another host sync) or their largest value; None: those of
    the batch :func:`check_inputs` checked last in this thread.
    """
    label_max = _label_max(labels)
    check_labels_in_range(label_max, teacher_outputs, "teacher")
    outputs = {"teacher": teacher_outputs}

    def hook(role):
        def check(module, args, out):
            if not isinstance(out, torch.Tensor):
                raise LaktError(f"the {role} returned a {type(out).__name__}, not a tensor of logits [B, k]; "
                                "wrap it in an nn.Module whose forward returns only the logits")
            require(out.dim() == 2, f"the {role} returned shape {tuple(out.shape)}; expected logits [B, k]")
            if outputs.get(role) is None:
                check_labels_in_range(label_max, out.shape[1], role)
            outputs[role] = out.shape[1]
            if outputs.get("student") is not None and outputs.get("teacher") is not None:
                require(outputs["student"] == outputs["teacher"],
                        f"the student has {outputs['student']} outputs but the teacher {outputs['teacher']}; "
                        "give both networks the same classes, in the same order")
        return check

    handles = [student.register_forward_hook(hook("student"))]
    if teacher is not None:
        handles.append(teacher.register_forward_hook(hook("teacher")))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextmanager
def labels_fit_outputs(model: nn.Module, labels, role: str = "model"):
    """Within the block, ``model``'s logits must have an output for every label in ``labels``
    (a tensor, or its largest value as from :func:`check_batch`).

    For evaluation, where a label >= k is never predicted and so would silently count as
    wrong instead of failing, and for teacher targets computed once: checked on the first
    forward, at no extra pass.
    """
    label_max = labels if isinstance(labels, int) else int(labels.max()) if len(labels) else None
    state = {"checked": False}

    def check(module, args, out):
        if not state["checked"] and isinstance(out, torch.Tensor) and out.dim() == 2:
            state["checked"] = True
            check_labels_in_range(label_max, out.shape[1], role)

    handle = model.register_forward_hook(check)
    try:
        yield
    finally:
        handle.remove()


def check_split(x: torch.Tensor, y: torch.Tensor, what: str = "data") -> None:
    """A data set's values: at least one example, every image finite, no negative label.

    The index given for a bad image is its position in the data as passed, so it can be
    looked up there (a batch's position would mean nothing after shuffling).
    """
    require(len(y) > 0, f"{what} is empty (0 examples); pass a split with at least one image")
    finite, low, _ = _values(x, y)
    if not finite:
        index, kind = first_non_finite(x)
        raise LaktError(f"{what}: image {index} (of {len(x)}) holds {kind}; images must be finite -- "
                        "fix or drop it before training or evaluating")
    require(low >= 0, f"{what}: label {low} is negative; labels are class indices 0..k-1")


def check_gradient_values(x: torch.Tensor, index: torch.Tensor | None, outputs: int) -> None:
    """After the forward of :func:`lakt.output_gradient` (or ``logits_and_gradient``, ``full_jacobian``):
    every input finite and each output index (one per example; None: all rows) in 0..outputs-1,
    read with one host sync. Before that forward, :func:`check_model_input` checks types and shapes."""
    if index is None or index.numel() == 0:
        finite, low, high = _values(x, torch.zeros(1, dtype=torch.long, device=x.device))
    else:
        finite, low, high = _values(x, index)
    if not finite:
        raise _non_finite(x, "inputs", "input gradients of non-finite inputs are not defined")
    require(0 <= low and high < outputs,
            f"output index {low if low < 0 else high} is out of range for a model with {outputs} outputs; "
            f"choose indices in 0..{outputs - 1}")


def check_device(device, how: str = "--device"):
    """``device`` as a ``torch.device``, refused in one line unless this machine has it.

    lakt trains on ``cpu``, ``cuda[:i]`` or ``mps``; anything else, or one of those that
    is absent here (``mps`` off a Mac, ``cuda`` without a driver), names the fix, spelt
    as ``how`` sets a device (``--device`` on the command line, ``-p device`` for a
    chapter). None stays None (the caller's default).
    """
    if device is None:
        return None
    use = f"{how}cpu" if how.endswith("=") else f"{how} cpu"  # device=cpu, --device cpu, -p device cpu
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise LaktError(f"unknown device {str(device)!r}; use cpu, cuda, cuda:1 or mps ({use})") from None
    require(device.type in ("cpu", "cuda", "mps"),
            f"unknown device {str(device)!r}; use cpu, cuda, cuda:1 or mps ({use})")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        require(count > (device.index or 0), f"device {str(device)!r} asked for but this machine has "
                                             f"{count} CUDA device(s); use {use}" + (
                                                 f" or cuda:0..cuda:{count - 1}" if count else ""))
    if device.type == "mps":
        require(torch.backends.mps.is_available(), f"device {str(device)!r} asked for but MPS (Apple GPU) "
                                                   f"is not available on this machine; use {use}")
    return device


def check_checkpoint_file(path, what: str = "checkpoint") -> dict:
    """The contents of a lakt checkpoint the *user* named, or one line saying what the path is instead.

    Unlike a run's own files (a corrupt one is redone), nothing recomputes a file the
    user named: a folder, a missing file or a file that is not a lakt checkpoint is said
    to be exactly that.
    """
    path = Path(path)
    where = f"cannot read a lakt {what} at {str(path)!r}"
    require(path.exists(), f"{where}: it does not exist; pass the model.pt of a finished run")
    require(not path.is_dir(), f"{where}: it is a folder, not a file; pass the model.pt inside it "
                               f"({str(path / 'model.pt')!r} if it is a run folder)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a file that is not its format
        raise LaktError(f"{where}: it is not a checkpoint (torch cannot load it: {type(err).__name__}); "
                        "pass a model.pt written by lakt teacher or lakt robust") from None
    require(isinstance(state, dict) and "model" in state,
            f"{where}: it is a torch file but holds no model weights (no 'model' entry); "
            "pass a model.pt written by lakt teacher or lakt robust")
    return state
