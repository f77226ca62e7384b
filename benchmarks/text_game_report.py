"""Summaries of ``text_game_experiment.py`` runs: final held-out accuracy per arm (mean ± std
over seeds, min..max), paired differences against continued SFT, the issue's bar, the curves
plot and the markdown tables (split from the runner so each file stays readable)."""

from __future__ import annotations

import math
from pathlib import Path

SETS = ("records", "games")
COLUMNS = ("accuracy", "acc_changed", "acc_unchanged", "task_specific", "parsed")
LABELS = {"accuracy": "all", "acc_changed": "changed", "acc_unchanged": "unchanged",
          "task_specific": "task-specific reward", "parsed": "parsed"}
BAR_POINTS = 0.05  # issue 20: RLVR raises held-out overall accuracy by >= 5 points over SFT


def mean_std(xs: list[float]) -> dict:
    m = sum(xs) / len(xs)
    s = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return {"mean": m, "std": s, "min": min(xs), "max": max(xs), "n": len(xs), "values": xs}


def final(run: dict) -> dict:
    """The last record that has an evaluation."""
    return next(r for r in reversed(run["records"]) if any(k.startswith("eval/") for k in r))


def summarise(runs: dict[str, dict[int, dict]], init_eval: dict) -> dict:
    """Per arm (complete runs only): the final evaluation's metrics over seeds, training CPU
    and wall seconds; paired (same seed) differences of each RLVR arm against ``sft``; the bar."""
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
        for st in SETS:
            for c in COLUMNS:
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
    rl = out["arms"].get("rlvr_task_specific")
    if rl and init_eval:
        gain = rl["metrics"]["records/accuracy"]["mean"] - init_eval["records/accuracy"]
        vs = rl.get("minus_continued_sft", {}).get("records/accuracy")
        out["bar"] = {"gain_over_sft_points": 100 * gain, "gain_met": gain >= BAR_POINTS,
                      "minus_continued_sft_points": None if vs is None else 100 * vs["mean"],
                      "beats_continued_sft": None if vs is None else vs["mean"] > 0,
                      "beats_continued_sft_every_seed": None if vs is None else all(v > 0 for v in vs["values"])}
        out["bar"]["met"] = bool(out["bar"]["gain_met"] and out["bar"]["beats_continued_sft"])
    return out


def _pct(d: dict) -> str:
    return f"{100 * d['mean']:.1f} ± {100 * d['std']:.1f} ({100 * d['min']:.1f}–{100 * d['max']:.1f})"


def markdown(summary: dict) -> str:
    """Tables: the SFT model, then each arm's final held-out accuracy (percent, mean ± std over
    seeds (min–max)), the paired differences and the bar."""
    init = summary.get("sft_model", {})
    lines = []
    for st in SETS:
        lines += [f"**Held-out {st}** (accuracy %, greedy; mean ± std over seeds (min–max))", "",
                  "| model | seeds | steps | CPU s | " + " | ".join(LABELS[c] for c in COLUMNS) + " |",
                  "|---|---|---|---|" + "---|" * len(COLUMNS)]
        if init:
            lines.append("| SFT (start of every arm) | – | – | – | " + " | ".join(
                f"{100 * init[f'{st}/{c}']:.1f}" for c in COLUMNS) + " |")
            lines.append("| \"no change\" baseline | – | – | – | " + " | ".join(
                {"accuracy": f"{100 * (1 - init[f'{st}/changed_share']):.1f}", "acc_changed": "0.0",
                 "acc_unchanged": "100.0"}.get(c, "–") for c in COLUMNS) + " |")
        for arm, a in summary["arms"].items():
            cells = [_pct(a["metrics"][f"{st}/{c}"]) if f"{st}/{c}" in a["metrics"] else "–" for c in COLUMNS]
            lines.append(f"| {arm} | {len(a['seeds'])} | {'/'.join(map(str, a['steps']))} | "
                         f"{a['cpu_s']['mean']:.0f} | " + " | ".join(cells) + " |")
        lines.append("")
    for arm, a in summary["arms"].items():
        if a.get("minus_continued_sft"):
            lines.append(f"{arm} − continued SFT, paired by seed (points): " + "; ".join(
                f"{k} {100 * d['mean']:+.1f} ± {100 * d['std']:.1f} ({', '.join(f'{100 * v:+.1f}' for v in d['values'])})"
                for k, d in a["minus_continued_sft"].items() if k.endswith(("accuracy", "changed", "unchanged"))))
            lines.append("")
    b = summary.get("bar")
    if b:
        lines.append(f"Bar (issue 20): RLVR (task-specific) − SFT on held-out records = "
                     f"{b['gain_over_sft_points']:+.1f} points (needs ≥ +5: "
                     f"{'met' if b['gain_met'] else 'not met'}); RLVR − continued SFT = "
                     + ("n/a" if b["minus_continued_sft_points"] is None else
                        f"{b['minus_continued_sft_points']:+.1f} points") +
                     f" → **bar {'met' if b['met'] else 'not met'}**.")
    if summary.get("incomplete"):
        lines.append(f"Incomplete runs (left out): {', '.join(summary['incomplete'])}.")
    return "\n".join(lines)


def plot(runs: dict[str, dict[int, dict]], init_eval: dict, path: Path) -> None:
    """Held-out accuracy (all / changed / unchanged; records and games) against training CPU
    seconds: thin lines per seed, thick the mean; plus each RLVR arm's training reward and the
    share of groups whose rewards are all equal (no GRPO signal), as ``<path>_reward.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"rlvr_task_specific": "tab:red", "rlvr_binary": "tab:orange", "sft": "tab:blue"}
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), sharex=True)
    for i, st in enumerate(SETS):
        for j, c in enumerate(COLUMNS[:3]):
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
            ax.set_title(f"held-out {st}: {LABELS[c]}")
            if j == 0:
                ax.set_ylabel("accuracy (%)")
            if i == 1:
                ax.set_xlabel("training CPU seconds (1 thread)")
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Text-game world model (tiny, CPU): RLVR vs continued SFT from one SFT model")
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
    axes[0].set_title("training reward (mean over 40 samples, smoothed 10 steps)")
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
