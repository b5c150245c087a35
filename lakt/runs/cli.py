"""The ``lakt`` command: train teachers and students, test noise robustness, run sweeps.

Every mistake a user can make ends in one line ``lakt: error: ...`` naming the fix,
with exit code 2 and no traceback.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ..core.errors import LaktError, require


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` shows each option's default, but not "None" (no default) or a switch's False."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument gives one line (not usage + error) and exit code 2."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"lakt: error: {message} (see '{self.prog} --help')\n")


def _number(cast, ok, wanted: str):
    """An argparse type: ``cast`` the text and check ``ok``, else one line saying what is wanted."""
    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value
    return parse


_positive_float = _number(float, lambda v: v > 0 and v != float("inf"), "a number > 0")
_nonneg_float = _number(float, lambda v: v >= 0 and v != float("inf"), "a non-negative number")
_positive_int = _number(int, lambda v: v >= 1, "a positive integer")
_nonneg_int = _number(int, lambda v: v >= 0, "a whole number >= 0")


def _add_data(p):
    from ..core.data import DATASETS
    p.add_argument("--dataset", default="digits", choices=DATASETS,
                   help="digits (offline default), cifar10, cifar100, or folder (ImageFolder layout)")
    p.add_argument("--data-root", default=None, help="folder holding the dataset (not needed for digits)")
    p.add_argument("--download", action="store_true", help="let torchvision download CIFAR into --data-root")


def _add_training(p, epochs=15):
    p.add_argument("--width", type=_positive_float, default=0.25, help="channel multiplier (1 = the paper's nets)")
    p.add_argument("--epochs", type=_positive_int, default=epochs, help="training epochs")
    p.add_argument("--batch-size", type=_positive_int, default=64, help="examples per optimiser step")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the initial weights and the batches (and of a student's subset)")
    p.add_argument("--results", default="runs", help="results cache folder")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: CUDA when present)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--validation", type=_nonneg_int, default=0,
                   help="hold out this many training images (stratified, fixed seed) and report val_acc")
    _add_speed(p)


def _add_speed(p):
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                   help="bf16: bfloat16 autocast for the networks' passes, losses in float32 (GPU speed option)")
    p.add_argument("--channels-last", action="store_true", help="NHWC memory layout (GPU speed option)")


def _add_executor(p):
    g = p.add_argument_group("executors (README: Beyond one machine)")
    g.add_argument("--executor", default="inline", choices=["inline", "local", "slurm"],
                   help="inline: one run after another here; local: --workers runs at once here; "
                        "slurm: a SLURM job array, one task per run")
    g.add_argument("--workers", type=_positive_int, default=2, help="local: runs at once (they share the GPUs)")
    g.add_argument("--wait", action="store_true", help="slurm: follow the jobs with a progress bar until they end")
    g.add_argument("--slurm-partition", default=None, help="slurm: partition (default: the cluster's default)")
    g.add_argument("--gpus-per-task", type=_nonneg_int, default=0, help="slurm: GPUs per run")
    g.add_argument("--cpus-per-task", type=_positive_int, default=1, help="slurm: CPUs per run (its torch threads)")
    g.add_argument("--mem-gb", type=_positive_float, default=None, help="slurm: memory per run")
    g.add_argument("--timeout-min", type=_positive_int, default=24 * 60,
                   help="slurm: time limit per task; a task stopped by it is requeued and resumes")
    g.add_argument("--array-parallelism", type=_positive_int, default=256, help="slurm: tasks running at once")
    g.add_argument("--sbatch", action="append", metavar="KEY=VALUE",
                   help="slurm: any other sbatch option, e.g. --sbatch qos=high --sbatch account=lab (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    from .presets import PRESETS
    from ..core.methods import METHODS
    from ..core.robustness import PAPER_SIGMAS

    parser = _Parser(prog="lakt", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("teacher", help="train a VGG-9 teacher with cross-entropy on the whole training set")
    _add_data(p)
    _add_training(p)
    p.add_argument("--augment", action="store_true", help="random crop (4-pixel zero padding) + horizontal flip")

    p = sub.add_parser("student", help="train a VGG-4 student on a per-class subset with one of the methods")
    _add_data(p)
    _add_training(p, epochs=30)
    p.add_argument("--method", default="act+jac", choices=list(METHODS), help="loss combination (Tables 1-2 names)")
    p.add_argument("--n-per-class", type=_positive_int, default=10, help="training examples per class")
    p.add_argument("--jacobian-form", default="normalized", choices=["plain", "normalized"],
                   help="normalized: the paper's CIFAR-10 form; plain: its CIFAR-100 form")
    p.add_argument("--output", default="label", choices=["label", "top"],
                   help="Jacobian row to match: ground-truth label or the teacher's top logit")
    p.add_argument("--noise-sigma", type=_positive_float, default=0.1, help="sigma of the noisy-input methods")
    p.add_argument("--jac-weight", type=_positive_float, default=1.0,
                   help="gamma, the Jacobian term's weight (the paper's is 1; methods with 'jac' only)")
    p.add_argument("--kd-temperature", type=_positive_float, default=4.0, help="T of Hinton KD (method kd)")
    p.add_argument("--kd-alpha", type=_number(float, lambda v: 0 < v <= 1, "a number in (0, 1]"), default=0.9,
                   help="alpha of Hinton KD: alpha T^2 KL + (1 - alpha) CE")
    p.add_argument("--at-weight", type=_positive_float, default=1000.0,
                   help="beta of attention transfer (method at+ce)")
    p.add_argument("--fd-step", type=_positive_float, default=0.01,
                   help="h of the finite-difference Jacobian term (*fdjac* methods)")
    p.add_argument("--fd-fraction", type=_positive_float, default=0.25,
                   help="share of each batch perturbed for the finite-difference term, in (0, 1] (*fdjac* methods)")
    p.add_argument("--teacher-epochs", type=_positive_int, default=15,
                   help="epochs of the teacher run it uses (same dataset, width, batch size and validation, seed 0)")
    p.add_argument("--teacher-augment", action="store_true", help="use the teacher run trained with --augment")
    p.add_argument("--train-teacher", action="store_true",
                   help="train that teacher first if --results has not got it (else: an error naming the command)")
    p.add_argument("--save-model", action="store_true", help="keep the student's weights (model.pt) in its run folder")

    p = sub.add_parser("robust", help="train VGG-9 with a Jacobian-norm penalty and measure accuracy under noise")
    _add_data(p)
    _add_training(p)
    p.add_argument("--penalty", type=_nonneg_float, default=0.1, help="Jacobian-norm strength (Table 3 rows)")
    p.add_argument("--sigmas", type=_nonneg_float, nargs="+", default=list(PAPER_SIGMAS),
                   help="input noise levels (Table 3's)")
    p.add_argument("--trials", type=_positive_int, default=10, help="noise draws per sigma")
    p.add_argument("--augment", action="store_true", help="random crop (4-pixel zero padding) + horizontal flip")

    p = sub.add_parser("noise", help="accuracy of a saved model under Gaussian input noise")
    _add_data(p)
    p.add_argument("checkpoint", help="a model.pt written by lakt (teacher or robust run)")
    p.add_argument("--model", default="vgg9", choices=["vgg9", "vgg4"], help="the checkpoint's architecture")
    p.add_argument("--width", type=_positive_float, default=0.25, help="the checkpoint's channel multiplier")
    p.add_argument("--sigmas", type=_nonneg_float, nargs="+", default=list(PAPER_SIGMAS),
                   help="input noise levels (Table 3's)")
    p.add_argument("--trials", type=_positive_int, default=10, help="noise draws per sigma")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise draws")

    p = sub.add_parser("sweep", help="run every config of a preset through the results cache")
    p.add_argument("--preset", required=True, choices=list(PRESETS))
    p.add_argument("--dataset", default=None, choices=["digits", "cifar10", "cifar100", "folder"],
                   help="run the preset's protocol on this dataset instead of its own")
    p.add_argument("--results", required=True, help="results cache folder, shareable between machines")
    p.add_argument("--data-root", default=None, help="dataset folder (CIFAR root, or an ImageFolder tree)")
    p.add_argument("--download", action="store_true")
    p.add_argument("--shard", default=None, help=argparse.SUPPRESS)  # removed: one error line says what replaced it
    p.add_argument("--device", default=None)
    p.add_argument("--quiet", action="store_true")
    _add_speed(p)
    _add_executor(p)

    p = sub.add_parser("status", help="a sweep's runs: finished, running (holder, heartbeat), failed (why), pending")
    p.add_argument("--results", required=True, help="the sweep's results folder")
    p.add_argument("--preset", default=None, choices=list(PRESETS), help="also list the preset's runs not started")
    p.add_argument("--dataset", default=None, choices=["digits", "cifar10", "cifar100", "folder"],
                   help="the --dataset the sweep was given, if any")
    _add_speed(p)  # the speed options the sweep was given: they are part of its runs' keys

    p = sub.add_parser("presets", help="list the presets and how many runs each holds")
    return parser


def _check_paths(args) -> None:
    """``~`` expanded in every path; an explicitly given --data-root must exist, and --results
    must not be a file (every command, before any work: a file is said to be a file)."""
    from ..core.data import check_root
    for name in ("results", "data_root", "checkpoint"):
        if getattr(args, name, None) is not None:
            setattr(args, name, str(Path(getattr(args, name)).expanduser()))
    if getattr(args, "data_root", None) is not None:
        check_root(args.data_root, getattr(args, "download", False))
    results = getattr(args, "results", None)
    require(results is None or not Path(results).exists() or Path(results).is_dir(),
            f"--results {results!r} is a file, not a folder; pass a results folder")


def _summary(metrics: dict) -> str:
    return f"{metrics['name']}: test accuracy {metrics['test_acc']:.2f}% ({metrics['seconds']:.1f} s, {metrics['device']})"


def _trained_by(done: list[dict], cached: set[str], results) -> list[str]:
    """Who trained each finished run: "earlier" (finished before this sweep began), "now" (by
    this process) or "other" (during this sweep, by another process sharing the results
    folder). Several sweeps split a shared folder's runs between them, so a run finished
    during this sweep is this process's work only if ``runs.log``'s ``finish`` line for it
    names this host and pid."""
    import os
    import socket

    from .status import last_events

    events = last_events(Path(results))
    me = (socket.gethostname(), str(os.getpid()))
    out = []
    for m in done:
        event = events.get(m["key"], {})
        if m["key"] in cached:
            out.append("earlier")
        elif event.get("event") == "finish" and (event.get("host"), event.get("pid")) == me:
            out.append("now")
        else:
            out.append("other")
    return out


def _sweep_table(done: list[dict], cached: set[str], results) -> str:
    """One row per finished run of the sweep: what it scored, how long it took, who trained it."""
    import pandas as pd

    table = pd.DataFrame({"run": [m["name"] for m in done],
                          "test acc %": [f"{m['test_acc']:.2f}" for m in done],
                          "seconds": [f"{m['seconds']:.1f}" for m in done],
                          "trained": _trained_by(done, cached, results)})
    width = int(table["run"].str.len().max())
    return table.to_string(index=False, justify="left", formatters={"run": f"{{:<{width}}}".format})


def _config(args):
    """The RunConfig of a ``teacher``, ``robust`` or ``student`` command."""
    from .config import RunConfig

    common = dict(dataset=args.dataset, width=args.width, seed=args.seed, batch_size=args.batch_size,
                  precision=args.precision, channels_last=args.channels_last, validation=args.validation)
    if args.command == "teacher":
        return RunConfig("teacher", model="vgg9", epochs=args.epochs, save_model=True, augment=args.augment, **common)
    if args.command == "robust":
        return RunConfig("robust", model="vgg9", method="ce+jacnorm", epochs=args.epochs, penalty=args.penalty,
                         sigmas=tuple(args.sigmas), noise_trials=args.trials, save_model=True, augment=args.augment,
                         **common)
    teacher = RunConfig("teacher", dataset=args.dataset, model="vgg9", width=args.width, epochs=args.teacher_epochs,
                        batch_size=args.batch_size, save_model=True, precision=args.precision,
                        channels_last=args.channels_last, augment=args.teacher_augment, validation=args.validation)
    return RunConfig("student", model="vgg4", method=args.method, n_per_class=args.n_per_class, epochs=args.epochs,
                     jacobian_form=args.jacobian_form, output=args.output, noise_sigma=args.noise_sigma,
                     jac_weight=args.jac_weight, kd_temperature=args.kd_temperature, kd_alpha=args.kd_alpha,
                     at_weight=args.at_weight, fd_step=args.fd_step, fd_fraction=args.fd_fraction, teacher=teacher,
                     save_model=args.save_model, **common)


def _teacher_command(args) -> str:
    """The ``lakt teacher`` command that trains the teacher ``lakt student`` wants (same key)."""
    import shlex

    words = ["lakt", "teacher", "--dataset", args.dataset, "--width", str(args.width), "--epochs",
             str(args.teacher_epochs), "--batch-size", str(args.batch_size)]
    if args.data_root is not None:
        words += ["--data-root", args.data_root]
    if args.download:
        words.append("--download")
    if args.precision != "fp32":
        words += ["--precision", args.precision]
    if args.channels_last:
        words.append("--channels-last")
    if args.teacher_augment:
        words.append("--augment")
    if args.validation:
        words += ["--validation", str(args.validation)]
    return shlex.join(words + ["--results", args.results])


def _teacher_line(teacher, metrics: dict) -> str:
    return f"teacher: {teacher.name} (key {teacher.key}), test accuracy {metrics['test_acc']:.2f}%"


def _command(args, argv=None) -> int:
    from .. import runs

    from ..core.train import check_device
    device = check_device(getattr(args, "device", None))
    _check_paths(args)
    if args.command == "presets":
        width = max(map(len, runs.PRESETS))
        for name in runs.PRESETS:
            print(f"{name:{width}s} {len(runs.preset(name)):4d} runs  {runs.PRESETS[name].description}")
        return 0
    if args.command == "noise":
        from ..core.data import load
        from ..core.models import build
        from ..core.robustness import noise_robustness
        from ..core.checks import check_checkpoint_file
        from ..core.train import load_checkpoint
        check_checkpoint_file(args.checkpoint)  # the user named it: said as it is, never "recomputed"
        ds = load(args.dataset, args.data_root, args.download)
        model = build(args.model, ds.num_classes, width=args.width, in_channels=ds.in_channels)
        load_checkpoint(model, Path(args.checkpoint))
        import pandas as pd
        print(pd.DataFrame(noise_robustness(model, ds.test, args.sigmas, args.trials, args.seed)).to_string(index=False))
        return 0
    if args.command == "status":
        from .status import render, status
        configs = ([runs.with_speed(c, args.precision, args.channels_last) for c in runs.preset(args.preset, args.dataset)]
                   if args.preset else None)
        print(render(status(Path(args.results), configs)))
        return 0
    if args.command == "sweep":
        require(args.shard is None, "--shard was removed: run `lakt sweep` with the same --results on each machine "
                                    "(claims split the work), or use --executor slurm / --executor local")
        configs = [runs.with_speed(c, args.precision, args.channels_last) for c in runs.preset(args.preset, args.dataset)]
        if any(c.dataset != "digits" for c in configs):
            require(args.data_root is not None, f"preset {args.preset!r} needs --data-root DIR")
        if args.executor != "inline":
            return _sweep_elsewhere(args, configs, device)
        cached = {c.key for c, _ in runs.finished(configs, Path(args.results).expanduser(), data_root=args.data_root)}
        done = runs.sweep(configs, Path(args.results), data_root=args.data_root,
                        download=args.download, device=device, progress=not args.quiet)
        trained = _trained_by(done, cached, args.results)
        print(f"{len(done)} runs finished in {args.results} (preset {args.preset}): {trained.count('now')} trained "
              f"now by this process, {trained.count('other')} by another process sharing the folder (other), "
              f"{trained.count('earlier')} earlier")
        if done:
            print(_sweep_table(done, cached, args.results))
        return 0
    config, results = _config(args), Path(args.results).expanduser()
    if config.data is None and args.data_root is not None:
        config = runs.resolve(config, args.data_root, args.download)  # the teacher's key names its data
    teacher = config.teacher
    if teacher is not None:  # name the teacher before training; train one only when asked
        known = runs.load_result(teacher, results, data_root=args.data_root)
        if known is not None:
            print(_teacher_line(teacher, known))
        elif args.train_teacher:
            print(f"teacher: {teacher.name} (key {teacher.key}) is not in {results}; training it first")
    try:
        metrics = runs.run(config, results, data_root=args.data_root, download=args.download, device=device,
                           progress=not args.quiet, train_teacher=getattr(args, "train_teacher", True))
    except runs.TeacherMissing as missing:
        raise LaktError(f"{missing}; train it with '{_teacher_command(args)}', or add --train-teacher") from None
    if teacher is not None and known is None:
        print(_teacher_line(teacher, runs.load_result(teacher, results, data_root=args.data_root)))
    print(_summary(metrics))
    if "noise" in metrics:
        for row in metrics["noise"]:
            print(f"  sigma {row['sigma']:.2f}: {row['mean']:.2f} +- {row['std']:.2f}")
    print(f"results: {Path(args.results) / config.kind / metrics['key']}")
    return 0


def _sweep_elsewhere(args, configs, device) -> int:
    """--executor local / slurm (lakt.runs.executors); exit 1 if a run failed."""
    from . import executors
    from .status import render, status

    results = Path(args.results)
    follow = f"lakt status --results {args.results} --preset {args.preset}"
    if args.executor == "local":
        failed = executors.run_local(configs, results, args.workers, data_root=args.data_root,
                                     download=args.download, device=device, progress=not args.quiet)
    else:
        options = executors.SlurmOptions(
            partition=args.slurm_partition, gpus_per_task=args.gpus_per_task, cpus_per_task=args.cpus_per_task,
            mem_gb=args.mem_gb, timeout_min=args.timeout_min, array_parallelism=args.array_parallelism,
            sbatch=executors.parse_sbatch(args.sbatch))
        sub = executors.submit_slurm(configs, results, options, data_root=args.data_root, download=args.download,
                                     device=None if device is None else str(device), name=f"lakt-{args.preset}")
        for job, count, what in sub.jobs:
            print(f"submitted SLURM job array {job}: {count} tasks ({what})")
        if not sub.jobs:
            print(f"nothing to submit: every run of preset {args.preset} has finished in {args.results}")
            return 0
        print(f"logs: {sub.logs}/<job>_<task>/   follow: {follow}   (or squeue -j {','.join(sub.ids)})")
        if not args.wait:
            return 0
        failed = executors.wait(configs, results, lambda: bool(executors.slurm_running(sub.ids)),
                                progress=not args.quiet)
    if failed:
        table = status(results, failed)
        print(render(table), file=sys.stderr)
        print(f"lakt: {len(failed)} of {len(configs)} runs did not finish; fix and run the same command again "
              f"(finished runs are kept)", file=sys.stderr)
        return 1
    print(f"{len(configs)} runs finished in {args.results} (preset {args.preset}, executor {args.executor})")
    return 0


def _as_flags(message: str, parser: argparse.ArgumentParser) -> str:
    """A core error names keyword arguments (``jac_weight=10``); on the command line they are flags."""
    flags = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                flags |= {o for a in sub._actions for o in a.option_strings if o.startswith("--")}
    return re.sub(r"\b([a-z][a-z_]*)=(\S+)",
                  lambda m: (f"--{m[1].replace('_', '-')} {m[2]}" if f"--{m[1].replace('_', '-')}" in flags
                             else m[0]), message)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _command(args, argv)
    except LaktError as err:
        print(f"lakt: error: {_as_flags(str(err), parser)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lakt: interrupted; finished runs are kept and the next call resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
