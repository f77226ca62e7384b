"""Summaries of ``rlvr_vs_sft.py`` runs: each arm's final held-out metrics (mean ± std over
seeds, min..max), paired (same seed) differences against continued SFT, the experiment's bar,
the curves plot and the markdown tables (split from the runner so each file stays readable).
Metrics are fractions; tables print them as percentages."""

from __future__ import annotations

import math
from pathlib import Path


def mean_std(xs: list[float]) -> dict:
    m = sum(xs) / len(xs)
    s = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return {"mean": m, "std": s, "min": min(xs), "max": max(xs), "n": len(xs), "values": xs}


def final(run: dict) -> dict:
    """The last record that has an evaluation."""
    return next(r for r in reversed(run["records"]) if any(k.startswith("eval/") for k in r))


def summarise(exp, runs: dict[str, dict[int, dict]], init_eval: dict) -> dict:
    """Per arm (complete runs only): the final evaluation's metrics over seeds, training CPU
    and wall seconds; paired (same seed) differences of each RLVR arm against ``sft``; the
    experiment's bar (``exp.bar``)."""
    out: dict = {"sft_model": init_eval, "arms": {}, "incomplete": []}
    for arm, by_seed in sorted(runs.items()):
        done = {s: r for s, r in sorted(by_seed.items()) if r.get("complete")}
        out["incomplete"] += [f"{arm}_s{s}" for s, r in by_seed.items() if not r.get("complete")]
        if not done:
            continue
        ends = {s: final(r) for s, r in done.items()}
        arm_sum = {"seeds": list(done), "steps": [ends[s]["step"] for s in done],
                   "cpu_s": mean_std([r["cpu_s"] for r in done.values()]),
                   "wall_s": mean_std([r["wall_s"] for r in done.values()]),
                   "sequences": mean_std([float(r["sequences"]) for r in done.values()]),
                   "metrics": {}}
        for st in exp.sets:
            for c in exp.columns:
                k = f"{st}/{c}"
                vals = [e.get(f"eval/{k}") for e in ends.values()]
                if all(v is not None and not math.isnan(v) for v in vals):
                    arm_sum["metrics"][k] = mean_std(vals)
        out["arms"][arm] = arm_sum
    sft = runs.get("sft", {})
    for arm in [a for a in out["arms"] if a.startswith("rlvr")]:
        paired = {}
        for k in out["arms"][arm]["metrics"]:
            d = [final(runs[arm][s])[f"eval/{k}"] - final(sft[s])[f"eval/{k}"]
                 for s in out["arms"][arm]["seeds"] if s in sft and sft[s].get("complete")]
            if d:
                paired[k] = mean_std(d)
        out["arms"][arm]["minus_continued_sft"] = paired
    bar = exp.bar(out)
    if bar:
        out["bar"] = bar
    return out


def rlvr_bar(summary: dict, arm: str, key: str, min_gain: float, issue: str) -> dict | None:
    """The usual bar: ``arm``'s final ``key`` (mean over seeds) exceeds the SFT model's by at
    least ``min_gain`` and beats continued SFT (mean paired difference > 0)."""
    rl, init = summary["arms"].get(arm), summary.get("sft_model", {})
    if not rl or key not in init or key not in rl["metrics"]:
        return None
    gain = rl["metrics"][key]["mean"] - init[key]
    vs = rl.get("minus_continued_sft", {}).get(key)
    bar = {"arm": arm, "metric": key, "gain_over_sft_points": 100 * gain, "gain_met": gain >= min_gain and gain > 0,
           "minus_continued_sft_points": None if vs is None else 100 * vs["mean"],
           "beats_continued_sft": None if vs is None else vs["mean"] > 0,
           "beats_continued_sft_every_seed": None if vs is None else all(v > 0 for v in vs["values"])}
    bar["met"] = bool(bar["gain_met"] and bar["beats_continued_sft"])
    need = f"needs ≥ +{100 * min_gain:g}" if min_gain > 0 else "needs > 0"
    bar["text"] = (f"Bar ({issue}): {arm} − SFT on held-out {key} = {bar['gain_over_sft_points']:+.1f} points "
                   f"({need}: {'met' if bar['gain_met'] else 'not met'}); {arm} − continued SFT = "
                   + ("n/a" if vs is None else f"{bar['minus_continued_sft_points']:+.1f} points")
                   + f" → **bar {'met' if bar['met'] else 'not met'}**.")
    return bar


def _pct(d: dict) -> str:
    return f"{100 * d['mean']:.1f} ± {100 * d['std']:.1f} ({100 * d['min']:.1f}–{100 * d['max']:.1f})"


def markdown(exp, summary: dict) -> str:
    """Tables: the SFT model, then each arm's final held-out metrics (percent, mean ± std over
    seeds (min–max)), the paired differences and the bar."""
    init = summary.get("sft_model", {})
    lines = []
    for st in exp.sets:
        lines += [f"**Held-out {st}** (%, greedy; mean ± std over seeds (min–max))", "",
                  "| model | seeds | steps | CPU s | " + " | ".join(exp.labels[c] for c in exp.columns) + " |",
                  "|---|---|---|---|" + "---|" * len(exp.columns)]
        if init:
            lines.append("| SFT (start of every arm) | – | – | – | " + " | ".join(
                f"{100 * init[f'{st}/{c}']:.1f}" if f"{st}/{c}" in init else "–" for c in exp.columns) + " |")
            base = exp.baseline_row(init, st)
            if base:
                lines.append("| \"no change\" baseline | – | – | – | " + " | ".join(
                    f"{100 * base[c]:.1f}" if c in base else "–" for c in exp.columns) + " |")
        for arm, a in summary["arms"].items():
            cells = [_pct(a["metrics"][f"{st}/{c}"]) if f"{st}/{c}" in a["metrics"] else "–"
                     for c in exp.columns]
            lines.append(f"| {arm} | {len(a['seeds'])} | {'/'.join(map(str, a['steps']))} | "
                         f"{a['cpu_s']['mean']:.0f} | " + " | ".join(cells) + " |")
        lines.append("")
    for arm, a in summary["arms"].items():
        if a.get("minus_continued_sft"):
            lines.append(f"{arm} − continued SFT, paired by seed (points): " + "; ".join(
                f"{k} {100 * d['mean']:+.1f} ± {100 * d['std']:.1f} ({', '.join(f'{100 * v:+.1f}' for v in d['values'])})"
                for k, d in a["minus_continued_sft"].items() if k.split("/")[1] in exp.paired_columns))
            lines.append("")
    if summary.get("bar"):
        lines.append(summary["bar"]["text"])
    if summary.get("incomplete"):
        lines.append(f"Incomplete runs (left out): {', '.join(summary['incomplete'])}.")
    return "\n".join(lines)


def plot(exp, runs: dict[str, dict[int, dict]], init_eval: dict, path: Path) -> None:
    """The first three held-out columns of each set against training CPU seconds: thin lines
    per seed, thick the mean; plus each RLVR arm's training reward and the share of groups whose
    rewards are all equal (no GRPO signal), as ``<path>_reward.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"sft": "tab:blue", **exp.colors}
    fig, axes = plt.subplots(len(exp.sets), 3, figsize=(13, 3.5 * len(exp.sets)), sharex=True, squeeze=False)
    for i, st in enumerate(exp.sets):
        for j, c in enumerate(exp.columns[:3]):
            ax, k = axes[i][j], f"eval/{st}/{c}"
            for arm, by_seed in runs.items():
                curves = [[(r["cpu_s"], 100 * r[k]) for r in run["records"] if k in r] for run in by_seed.values()]
                for cv in curves:
                    ax.plot(*zip(*cv, strict=True), color=colors.get(arm, "k"), alpha=0.3, lw=0.8)
                n = min(len(cv) for cv in curves)
                mean = [(sum(cv[t][0] for cv in curves) / len(curves), sum(cv[t][1] for cv in curves) / len(curves))
                        for t in range(n)]
                ax.plot(*zip(*mean, strict=True), color=colors.get(arm, "k"), lw=2.2,
                        label=f"{arm} ({len(curves)} seeds)")
            ax.set_title(f"held-out {st}: {exp.labels[c]}")
            if j == 0:
                ax.set_ylabel("%")
            if i == len(exp.sets) - 1:
                ax.set_xlabel("training CPU seconds (1 thread)")
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(exp.title or f"{exp.name} world model: RLVR vs continued SFT from one SFT model")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    rl = {a: r for a, r in runs.items() if a.startswith("rlvr")}
    if not rl:
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for arm, by_seed in rl.items():
        for run in by_seed.values():
            recs = [r for r in run["records"] if "reward" in r]
            steps = [r["step"] for r in recs]
            axes[0].plot(steps, _smooth([r["reward"] for r in recs]), color=colors.get(arm, "k"), alpha=0.7)
            axes[1].plot(steps, _smooth([r["frac_reward_zero_std"] for r in recs]), color=colors.get(arm, "k"),
                         alpha=0.7)
        axes[0].plot([], [], color=colors.get(arm, "k"), label=arm)
    axes[0].set_title("training reward (mean over the step's samples, smoothed 10 steps)")
    axes[1].set_title("share of groups with equal rewards (no signal)")
    for ax in axes:
        ax.set_xlabel("GRPO step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path.with_name(path.stem + "_reward.png"), dpi=110)
    plt.close(fig)


def _smooth(xs: list[float], w: int = 10) -> list[float]:
    return [sum(xs[max(0, i - w + 1): i + 1]) / len(xs[max(0, i - w + 1): i + 1]) for i in range(len(xs))]
