"""The verdict table: each claim of the paper, its number, ours, and a computed word.

One row per claim -- Table 1's questions (a), (b), (d), Table 3's (c), Propositions 1 and 2 --
and one measure per row, the same for the paper and for us:

* (a) Match Activations + CE minus CE, (b) Match {Activations + Jacobians} minus Match
  Activations as the paper specifies it (γ = 1), (d) Match Activations minus Hinton KD: the
  test-accuracy difference in points, averaged over the sizes ≤ 100 examples per class;
* (c) the strongest Jacobian-norm penalty minus none: test accuracy under input noise,
  averaged over the noise levels σ > 0;
* Props 1-2: the order in σ of the remainder LHS − RHS (the paper's proof gives 4).

Ours is paired by seed (both runs of a seed share images and initialisation), averaged per
seed, and shown as mean ± std over the seeds. Four words only (:data:`WORDS`): the word of an
experiment is :func:`word`'s, from the same paired differences per size (or noise level).
"""
from __future__ import annotations

import html

import numpy as np
import pandas as pd

from ..core.errors import require
from .answers import verdict
from .palette import VERDICT_COLORS
from .palette import Shown

WORDS = ("holds", "partly", "does not hold", "not testable here")

RULES = (
    "A comparison is paired by seed and read per size (or noise level): a size is a win or a loss only when "
    "the mean difference is larger than its spread over the seeds, otherwise a tie.",
    "**holds**: the claimed winner wins at least half of the sizes and loses none; **does not hold**: it wins "
    "none (a tie is no evidence that A beats B); **partly**: anything between.",
    "**not testable here**: the runs are missing or have one seed, so there is no spread to read a "
    "difference against; the paper-scale column has one seed, so it informs but never decides.",
)
"""The rules behind the words, shown under the table."""

CLAIMS = {
    "(a)": ("Distillation beats cross-entropy training with few examples", ("act+ce", ""), ("ce", ""),
            "Act+CE − CE"),
    "(b)": ("Matching Jacobians too beats matching activations alone with few examples",
            ("act+jac", "γ=1"), ("act", ""), "Act+Jac − Act"),
    "(d)": ("Squared-error distillation beats Hinton's KD", ("act", ""), ("kd", None), "Act − KD"),
}
"""Question -> (claim, method A, method B, short name): the one comparison each row measures.
A setting of None is the validation-chosen one."""

LINKS = {"(a)": ("03_transfer_cifar10.html", "#sec-answers"), "(b)": ("03_transfer_cifar10.html", "#sec-answers"),
         "(d)": ("03_transfer_cifar10.html", "#sec-answers"), "(c)": ("05_noise_robustness.html", "#sec-noise-answers"),
         "Prop 1": ("02_propositions.html", "#sec-orders"), "Prop 2": ("02_propositions.html", "#sec-orders")}
"""Question -> (page, anchor) of the section that shows it in full."""


def proposition(relu_exact: bool, smooth_order: float) -> str:
    """Props 1-2: LHS − RHS = O(σ⁴). ReLU nets: exactly 0 inside a linear region; smooth nets: the fitted order.

    Holds when both hold; partly when only one does (a smooth pair's remainder is O(σ²)).
    """
    smooth_ok = smooth_order >= 3.5
    if relu_exact and smooth_ok:
        return "holds"
    return "partly" if relu_exact or smooth_ok else "does not hold"


def paired_by_seed(diff: pd.Series, cell: str) -> dict:
    """A difference indexed (cell, seed) -> the row's measure and word.

    ``mean``/``std``: over seeds of each seed's mean over cells; ``seeds``; ``wins``,
    ``losses``, ``ties`` per cell (a cell counts when |mean| exceeds its std over seeds) and
    ``word`` (*not testable here* with fewer than two seeds).
    """
    diff = diff.dropna()
    per_seed = diff.groupby(level="seed").mean()
    cells = diff.groupby(level=cell).agg(["mean", "std", "count"])
    seeds = len(per_seed)
    wins = int(((cells["mean"] > cells["std"]) & (cells["count"] > 1)).sum())
    losses = int(((cells["mean"] < -cells["std"]) & (cells["count"] > 1)).sum())
    ties = int((cells["count"] > 1).sum()) - wins - losses
    return {"mean": float(per_seed.mean()) if seeds else float("nan"),
            "std": float(per_seed.std(ddof=1)) if seeds > 1 else float("nan"), "seeds": seeds,
            "cells": len(cells), "wins": wins, "losses": losses, "ties": ties,
            "word": verdict(wins, losses, ties) if seeds > 1 else "not testable here"}


def _setting(students: pd.DataFrame, method: str, setting):
    """The rows of one (method, setting); setting None: the validation-chosen one."""
    from .answers import choose, with_settings

    if "val_acc" in students and students["val_acc"].notna().all():
        students = with_settings(students)
        if setting is None:
            setting = choose(students).loc[method, "setting"] if method in set(students["method"]) else ""
        return students[(students["method"] == method) & (students["setting"] == setting)], setting
    rows = students[students["method"] == method]   # no validation split: one setting per method
    return rows, setting or ""


def transfer_measure(students: pd.DataFrame, a: tuple, b: tuple, max_size: int = 100) -> dict:
    """A − B (test accuracy, points) paired by seed over the sizes ≤ ``max_size``: :func:`paired_by_seed`'s dict
    plus the settings compared."""
    students = students[students["n_per_class"].notna() & (students["n_per_class"] <= max_size)]
    (ra, sa), (rb, sb) = _setting(students, *a), _setting(students, *b)
    acc = lambda rows: rows.set_index(["n_per_class", "seed"])["test_acc"]
    if ra.empty or rb.empty:
        return {"seeds": 0, "word": "not testable here", "settings": (sa, sb)}
    return {**paired_by_seed(acc(ra) - acc(rb), "n_per_class"), "settings": (sa, sb)}


def noise_measure(curves: pd.DataFrame, baseline: float = 0.0) -> dict:
    """(c): the strongest penalty minus ``baseline``, accuracy under noise paired by seed over σ > 0."""
    acc = curves.set_index(["penalty", "sigma", "seed"])["acc"]
    strongest = max(curves["penalty"])
    diff = (acc.xs(strongest, level="penalty") - acc.xs(baseline, level="penalty"))
    diff = diff.drop(index=min(curves["sigma"]), level="sigma")
    return {**paired_by_seed(diff, "sigma"), "penalty": strongest}


def paper_transfer(table1: pd.DataFrame, a: str, b: str, max_size: int = 100) -> float:
    """The same measure on the paper's Table 1 (one run per cell): A − B averaged over sizes ≤ ``max_size``."""
    sizes = [n for n in table1.columns if n <= max_size]
    return float((table1.loc[a, sizes] - table1.loc[b, sizes]).mean())


def paper_noise(table3: pd.DataFrame) -> tuple[float, float]:
    """(strongest penalty, its accuracy minus no penalty's averaged over σ > 0) in the paper's Table 3."""
    t = table3.pivot(index="penalty", columns="sigma", values="mean")
    sigmas = [s for s in t.columns if s > 0]
    return float(t.index.max()), float((t.loc[t.index.max(), sigmas] - t.loc[0.0, sigmas]).mean())


def _points(m: dict) -> str:
    if not m.get("seeds"):
        return "not run"
    spread = f" ± {m['std']:.2f}" if m["seeds"] > 1 else ""
    return f"{m['mean']:+.2f}{spread} pts ({m['seeds']} seed{'s' if m['seeds'] > 1 else ''})".replace("-", "−")


def scale_parts(configs, done: pd.DataFrame, steps: int | None = None) -> list[str]:
    """The scale a column's runs were trained at: [network, width, steps or epochs, seeds, hardware]
    ([] when none finished)."""
    runs = [c for c in configs if c.kind in ("student", "robust")]
    if not runs or done.empty:
        return []
    c = runs[0]
    fraction = {0.5: "½", 0.25: "¼", 0.125: "⅛"}.get(c.width, f"{c.width:g}")
    seeds = done["seed"].nunique()
    hardware = sorted({str(d) if not str(d).startswith("cpu") else "CPU" for d in done["device"]})
    return [{"vgg4": "VGG-4", "vgg9": "VGG-9"}.get(c.model, c.model), "full width" if c.width == 1 else f"×{fraction} width",
            f"{steps} steps" if steps else f"{c.epochs} epochs", f"{seeds} seed{'s' if seeds > 1 else ''}", ", ".join(hardware)]


def scale(configs, done: pd.DataFrame, steps: int | None = None) -> str:
    """:func:`scale_parts` as one line, e.g. "VGG-4 ×¼ width, 600 steps, 3 seeds, CPU"; "not run" without runs."""
    parts = scale_parts(configs, done, steps)
    return f"{parts[0]} {', '.join(parts[1:])}" if parts else "not run"


def _finished(configs, results, parameter: str) -> pd.DataFrame:
    from pathlib import Path

    from ..runs import collect

    table = collect(configs, results)
    require(len(table), f"no finished runs in {Path(results).resolve()}; set the parameter {parameter} "
                        "to the folder holding the committed results")
    return table


def verdict_table(real_preset: str, robust_preset: str, gpu_preset: str, results, theory: dict,
                  links: dict | None = None) -> pd.DataFrame:
    """The verdict table (rows (a), (b), (c), (d), Prop 1, Prop 2), computed from the committed runs.

    ``results``: the folder of committed runs (papermill parameter ``real_results``);
    ``theory``: :func:`lakt.analysis.propositions.proposition_orders`'s dict;
    ``links``: question -> (page, anchor) of the section that shows it.
    """
    from .. import runs
    from .answers import noise_curves
    from .paper import table1, table3

    links = links or {}
    real_configs = runs.preset(real_preset)
    real = _finished(real_configs, results, "real_results")
    students = real[real["kind"] == "student"]
    gpu_configs = [runs.with_speed(c, "bf16", True) for c in runs.preset(gpu_preset)]
    gpu = runs.collect(gpu_configs, results)
    gpu_students = gpu[gpu["kind"] == "student"] if len(gpu) else gpu
    steps = runs.get_preset(real_preset).student_steps
    gpu_steps = runs.get_preset(gpu_preset).student_steps
    cpu_scale = scale(real_configs, students, steps)
    rows = []
    for question, (claim, a, b, name) in CLAIMS.items():
        ours = transfer_measure(students, a, b)
        big = transfer_measure(gpu_students, a, b) if len(gpu_students) else {"seeds": 0}
        paper = (f"{paper_transfer(table1(), a[0], b[0]):+.2f} pts (Table 1, 1 run per size)"
                 if b[0] in table1().index else "argued, not measured (§5)")
        knob = f", KD at {ours['settings'][1]} (chosen on validation)" if ours.get("settings", ("", ""))[1] else ""
        rows.append({"question": question, "claim": f"{claim}: {name}, mean over 5–100 per class{knob}",
                     "paper": paper, "ours": _points(ours), "paper scale": _points(big),
                     "scale": cpu_scale, "verdict": ours["word"]})
        if big.get("seeds"):   # its width, length and hardware (its seeds are in the measure)
            parts = scale_parts(gpu_configs, gpu_students, gpu_steps)
            rows[-1]["paper scale"] += f" -- {parts[1]}, {parts[2]}, {parts[4]}"
    curves = noise_curves(runs.preset(robust_preset), results)
    noise = noise_measure(curves)
    strongest, paper_gain = paper_noise(table3())
    robust_runs = real[real["kind"] == "robust"] if robust_preset == real_preset else runs.collect(
        runs.preset(robust_preset), results).query("kind == 'robust'")
    rows.append({"question": "(c)", "claim": f"A stronger Jacobian-norm penalty makes a net more accurate under input noise: "
                 f"the strongest penalty ({noise['penalty']:g}) − none, mean over σ = 0.1–0.4",
                 "paper": f"{paper_gain:+.2f} pts (Table 3, penalty {strongest:g}, CIFAR-100, one net)",
                 "ours": _points(noise), "paper scale": "not run",
                 "scale": scale([c for c in runs.preset(robust_preset) if c.kind == "robust"], robust_runs),
                 "verdict": noise["word"]})
    for prop, claim in (("Prop 1", "Distilling at noisy inputs = matching activations + σ² × matching Jacobians"),
                        ("Prop 2", "Training at noisy inputs = clean loss + σ² × a Jacobian-norm penalty")):
        t = theory[prop]
        rows.append({"question": prop, "claim": f"{claim}, up to O(σ⁴): order of the remainder in σ",
                     "paper": "4 (its proof)", "ours": f"{t['order']:.1f} for a smooth (tanh) pair; ReLU pair: "
                     f"{'exactly 0' if t['relu_exact'] else 'not 0'} for σ ≤ 1e-3",
                     "paper scale": "not run", "scale": t["scale"],
                     "verdict": proposition(t["relu_exact"], t["order"])})
    frame = pd.DataFrame(rows).set_index("question").reindex(["(a)", "(b)", "(c)", "(d)", "Prop 1", "Prop 2"])
    frame["where"] = [links.get(q, ("", ""))[0] + links.get(q, ("", ""))[1] for q in frame.index]
    bad = set(frame["verdict"]) - set(WORDS)
    require(not bad, f"verdicts must be one of {WORDS}, got {sorted(bad)}")
    return frame


_COLUMNS = {"claim": "claim and measure", "paper": "paper", "ours": "ours, CPU scale",
            "paper scale": "ours, paper scale", "scale": "CPU scale", "verdict": "verdict"}


def show(table: pd.DataFrame, caption: str = "") -> Shown:
    """The verdict table as the book shows it: a table at page width, one card per claim on a narrow screen,
    the rules beneath it."""
    head = "".join(f"<th>{html.escape(v)}</th>" for v in ["", *_COLUMNS.values(), ""])
    body = []
    for q, r in table.iterrows():
        cells = [f'<th class="lakt-q">{html.escape(str(q))}</th>']
        for key, label in _COLUMNS.items():
            style = f' style="background-color: {VERDICT_COLORS[r[key]]}"' if key == "verdict" else ""
            cells.append(f'<td data-label="{html.escape(label)}"{style}>{html.escape(str(r[key]))}</td>')
        link = f'<a href="{html.escape(r["where"])}">details</a>' if r["where"] else ""
        cells.append(f'<td class="lakt-where">{link}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    rules = "".join(f"<li>{_md_bold(s)}</li>" for s in RULES)
    page = (f'<div class="lakt-verdicts"><table>{cap}<thead><tr>{head}</tr></thead><tbody>{"".join(body)}'
            f'</tbody></table><ul class="lakt-rules">{rules}</ul></div>')
    text = (caption + "\n" if caption else "") + table.drop(columns="where").to_string()
    return Shown(page, text)


def _md_bold(sentence: str) -> str:
    parts = html.escape(sentence).split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))


def counts(table: pd.DataFrame) -> pd.Series:
    """How many claims got each word (every word listed, zeros included)."""
    return table["verdict"].value_counts().reindex(list(WORDS), fill_value=0).astype(np.int64)
