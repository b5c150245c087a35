"""The training loop: it learns, checkpoints round-trip, kills resume, NaNs stop it."""

from types import SimpleNamespace

import pytest
import torch

from lakt.core import data, models
from lakt.core.errors import LaktError
from lakt.core.methods import get_method
from lakt.core.objective import Objective
from lakt.core.train import NonFiniteLoss, TrainSpec, evaluate, fit, load_checkpoint, save_checkpoint


def fit_spec(model, data, objective, *, test=None, validation=None, checkpoint=None, on_epoch=None, progress=False,
             **spec):
    """fit with the run's TrainSpec given as keywords (the tests' shorthand)."""
    splits = {name: s for name, s in (("test", test), ("val", validation)) if s is not None}
    return fit(model, data, objective, TrainSpec(**spec), evaluate_on=splits, checkpoint=checkpoint,
               on_epoch=on_epoch, progress=progress)


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


class Killed(Exception):
    """Stands for a kill: raised from the epoch hook, after that epoch's checkpoint is written."""


def die_after(epoch: int):
    def hook(row):
        if row["epoch"] == epoch:
            raise Killed
    return hook


def small_net(seed=0):
    torch.manual_seed(seed)
    return models.vgg4(num_classes=10, width=0.125, in_channels=1)


def test_training_on_digits_lowers_the_loss_and_beats_chance(digits):
    net = small_net()
    history = fit_spec(net, digits.train, Objective(get_method("ce")), epochs=3, batch_size=64, device="cpu",
                  test=digits.test, progress=False)
    assert len(history) == 3
    assert history[-1]["loss"] < 0.8 * history[0]["loss"]
    assert history[-1]["test_acc"] > 40.0  # chance is 10%
    assert history[-1]["lr"] == pytest.approx(1e-4)  # annealed once at 80% of the epochs
    assert history[0]["lr"] == pytest.approx(1e-3)


def test_checkpoint_round_trip(tmp_path, digits):
    net = small_net()
    fit_spec(net, digits.train, Objective(get_method("ce")), epochs=1, batch_size=64, device="cpu", progress=False)
    save_checkpoint(net, tmp_path / "m.pt")
    other = small_net(seed=1)
    load_checkpoint(other, tmp_path / "m.pt")
    for a, b in zip(net.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)
    assert evaluate(net, digits.test) == evaluate(other, digits.test)


def test_checkpoint_of_another_architecture_is_one_clear_error(tmp_path):
    save_checkpoint(small_net(), tmp_path / "m.pt")
    with pytest.raises(LaktError, match="different architecture"):
        load_checkpoint(models.vgg9(num_classes=10, width=0.125, in_channels=1), tmp_path / "m.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(LaktError, match="cannot read"):
        load_checkpoint(small_net(), tmp_path / "bad.pt")


def test_a_killed_run_resumes_to_the_same_weights(tmp_path, digits):
    train = digits.train.subset(data.per_class_subset(digits.train.y, 10, seed=0))
    objective = Objective(get_method("noisy-act+ce"), small_net(seed=7))  # uses the RNG every step
    reference = small_net()
    fit_spec(reference, train, objective, epochs=4, batch_size=32, device="cpu", progress=False)

    interrupted = small_net()
    with pytest.raises(Killed):
        fit_spec(interrupted, train, objective, epochs=4, batch_size=32, device="cpu", progress=False,
            checkpoint=tmp_path / "progress.pt", on_epoch=die_after(2), checkpoint_overhead=None)
    torch.manual_seed(12345)  # the resumed process starts with other random state
    resumed = small_net(seed=99)
    history = fit_spec(resumed, train, objective, epochs=4, batch_size=32, device="cpu", progress=False,
                  checkpoint=tmp_path / "progress.pt")
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_slow_checkpoints_are_written_less_often(tmp_path, digits, monkeypatch):
    """One-batch epochs shorter than a checkpoint write: saves are spaced to cap their share of time."""
    from lakt.core import train as train_lib

    saves, now = [], [0.0]
    real_save = train_lib.atomic_save

    def clock():  # the loop's clock, virtual: each reading is 20 ms of training later
        now[0] += 0.02
        return now[0]

    def slow_save(obj, path):
        now[0] += 0.05  # a 50 ms write, whatever this machine's disk and speed
        saves.append(obj["epoch"])
        real_save(obj, path)

    monkeypatch.setattr(train_lib, "time", SimpleNamespace(perf_counter=clock))
    monkeypatch.setattr(train_lib, "atomic_save", slow_save)
    tiny = digits.train.subset(data.per_class_subset(digits.train.y, 1, seed=0))  # 10 images: one batch
    run = dict(epochs=30, batch_size=32, device="cpu", progress=False)
    fit_spec(small_net(), tiny, Objective(get_method("ce")), checkpoint=tmp_path / "every.pt", checkpoint_overhead=None, **run)
    assert saves == list(range(1, 30))  # every epoch but the last
    saves.clear()
    fit_spec(small_net(), tiny, Objective(get_method("ce")), checkpoint=tmp_path / "capped.pt", checkpoint_overhead=0.1, **run)
    assert 1 <= len(saves) <= 10 and saves[0] == 1  # 50 ms writes need 0.5 s of training each


def test_non_finite_loss_stops_with_step_terms_and_run_name(digits):
    net = small_net()

    def exploding(model, x, y, positions):
        logits = model(x)
        return logits.sum() * float("nan"), {"ce": torch.tensor(float("nan")), "logits": logits}

    with pytest.raises(NonFiniteLoss, match=r"step 0 \(epoch 0\) of demo: ce=nan"):
        fit_spec(net, digits.train, exploding, epochs=1, batch_size=64, device="cpu", name="demo")


def test_channels_last_gives_the_same_loss_and_gradients_up_to_rounding(digits):
    """Adam amplifies rounding over many steps, so compare one step's loss and gradients."""
    x, y = digits.train.x[:32].double(), digits.train.y[:32]
    grads = []
    for memory_format in (torch.contiguous_format, torch.channels_last):
        net = small_net().double().to(memory_format=memory_format)
        total, _ = Objective(get_method("ce+jacnorm"))(net, x.contiguous(memory_format=memory_format), y)
        total.backward()
        grads.append([total.detach()] + [p.grad.clone() for p in net.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_fit_accepts_channels_last(digits):
    net = small_net()
    history = fit_spec(net, digits.train.subset(torch.arange(64)), Objective(get_method("ce")), epochs=1,
                  batch_size=32, device="cpu", progress=False, channels_last=True)
    assert net.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert history[0]["loss"] > 0


def test_an_augmented_run_resumes_to_the_same_weights_and_differs_from_an_unaugmented_one(tmp_path, digits):
    train = digits.train.subset(data.per_class_subset(digits.train.y, 10, seed=0))
    objective = Objective(get_method("ce"))
    reference, plain = small_net(), small_net()
    fit_spec(reference, train, objective, epochs=3, batch_size=32, device="cpu", progress=False, augment=True)
    fit_spec(plain, train, objective, epochs=3, batch_size=32, device="cpu", progress=False)
    assert not all(torch.equal(a, b) for a, b in zip(reference.state_dict().values(), plain.state_dict().values()))

    with pytest.raises(Killed):
        fit_spec(small_net(), train, objective, epochs=3, batch_size=32, device="cpu", progress=False, augment=True,
            checkpoint=tmp_path / "progress.pt", on_epoch=die_after(1), checkpoint_overhead=None)
    resumed = small_net(seed=99)
    fit_spec(resumed, train, objective, epochs=3, batch_size=32, device="cpu", progress=False, augment=True,
        checkpoint=tmp_path / "progress.pt", validation=digits.test, test=digits.test)
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_sgd_recipe_learns_anneals_by_cosine_and_resumes_to_the_same_weights(tmp_path, digits):
    """optimizer="sgd" (the v3 teacher's recipe): Nesterov SGD with weight decay, cosine lr -> final_lr;
    its momentum buffers and schedule travel with the checkpoint like Adam's."""
    import math

    train = digits.train.subset(data.per_class_subset(digits.train.y, 20, seed=0))
    objective = Objective(get_method("ce"))
    options = dict(epochs=4, batch_size=32, device="cpu", progress=False, optimizer="sgd", lr=0.05, final_lr=0.0,
                   weight_decay=5e-4)
    reference = small_net()
    history = fit_spec(reference, train, objective, test=digits.test, **options)
    assert [row["lr"] for row in history] == pytest.approx([0.05 * (1 + math.cos(math.pi * e / 4)) / 2
                                                            for e in range(1, 5)])
    assert history[-1]["loss"] < history[0]["loss"] and history[-1]["test_acc"] > 20.0  # chance is 10%
    adam = small_net()
    fit_spec(adam, train, objective, **{**options, "optimizer": "adam", "lr": 1e-3, "final_lr": 1e-4})
    assert not all(torch.equal(a, b) for a, b in zip(reference.state_dict().values(), adam.state_dict().values()))

    with pytest.raises(Killed):
        fit_spec(small_net(), train, objective, checkpoint=tmp_path / "progress.pt", on_epoch=die_after(2),
            checkpoint_overhead=None, **options)
    resumed = small_net(seed=99)
    fit_spec(resumed, train, objective, checkpoint=tmp_path / "progress.pt", test=digits.test, **options)
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(LaktError, match="unknown optimizer 'lion'; choose one of adam, sgd"):
        fit_spec(small_net(), train, objective, **{**options, "optimizer": "lion"})
