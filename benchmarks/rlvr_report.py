"""Summaries of ``rlvr_experiment.py`` runs: curves, mean ± std over seeds, the plot and the
markdown tables (split from the runner so each file stays readable)."""

from __future__ import annotations

import math
from pathlib import Path

METRICS = ["mse", "psnr", "ssim", "mse_1", "psnr_1", "ssim_1", "repetition_rate"]
OPTIONAL = ["stlpips", "stlpips_1"]  # held-out ST-LPIPS, when the runs were made with --stlpips

def curves(run: dict) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list] = {k: [] for k in METRICS + OPTIONAL}
    for r in run["records"]:
        for k in METRICS + OPTIONAL:
            if f"eval/{k}" in r:
                out[k].append((r["step"], r[f"eval/{k}"]))
    return out


def mean_std(xs: list[float]) -> tuple[float, float]:
    m = sum(xs) / len(xs)
    s = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return m, s


def common_step(runs: dict[str, dict[int, dict]]) -> int:
    """The largest evaluated step every included run has reached."""
    lasts = [curves(r)["mse"][-1][0] for by in runs.values() for r in by.values() if curves(r)["mse"]]
    return min(lasts) if lasts else 0


def at_step(curve: list[tuple[int, float]], step: int) -> float | None:
    return next((v for s, v in curve if s == step), None)


def train_seconds(run: dict, S: int) -> float:
    """Training wall-clock up to step S, evaluation excluded (GRPO: sum of step_time_s)."""
    times = [r["step_time_s"] for r in run["records"] if "step_time_s" in r and r["step"] <= S]
    if times:
        return float(sum(times))
    return run["wall_s"] * S / max(curves(run)["mse"][-1][0], 1)


def summarise(runs: dict[str, dict[int, dict]]) -> dict:
    """Per arm: metrics at step 0 and at the common step (mean, std over seeds)."""
    S = common_step(runs)
    summary = {"common_step": S}
    for arm, by_seed in runs.items():
        per_metric = {}
        for k in METRICS + OPTIONAL:
            start, end = [], []
            for r in by_seed.values():
                c = curves(r)[k]
                if c and at_step(c, S) is not None:
                    start.append(c[0][1])
                    end.append(at_step(c, S))
            if not end:
                continue
            rel = [(e - s) / abs(s) if s else float("nan") for s, e in zip(start, end, strict=True)]
            per_metric[k] = {"start": mean_std(start), "end": mean_std(end), "rel_change": mean_std(rel)}
        walls = [train_seconds(r, S) for r in by_seed.values() if curves(r)["mse"]]
        summary[arm] = {"seeds": sorted(by_seed), "steps": S,
                        "wall_s": mean_std(walls) if walls else (0.0, 0.0), "metrics": per_metric,
                        "complete": [bool(r.get("complete")) for r in by_seed.values()]}
    return summary


def plot(runs: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    has = lambda k: any(curves(r)[k] for by in runs.values() for r in by.values())  # noqa: E731
    # a single-step model predicts one frame: no repetition rate; its ST-LPIPS instead, if measured
    third = ("repetition_rate", "repetition rate") if has("repetition_rate") or not has("stlpips_1") \
        else ("stlpips_1", "held-out single-step ST-LPIPS")
    for ax, k, title in zip(axes, ["mse", "mse_1", third[0]],
                            ["held-out multi-step MSE", "held-out single-step MSE", third[1]],
                            strict=True):
        for arm, by_seed in runs.items():
            cs = [curves(r)[k] for r in by_seed.values() if curves(r)[k]]
            if not cs:
                continue
            n = min(len(c) for c in cs)
            steps = [cs[0][i][0] for i in range(n)]
            stats = [mean_std([c[i][1] for c in cs]) for i in range(n)]
            m = [s[0] for s in stats]
            sd = [s[1] for s in stats]
            ax.plot(steps, m, marker="o", ms=3, label=f"{arm} ({len(cs)} seeds)")
            ax.fill_between(steps, [a - b for a, b in zip(m, sd, strict=True)],
                            [a + b for a, b in zip(m, sd, strict=True)], alpha=0.2)
        ax.set_title(title)
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def curve_table(runs: dict[str, dict[int, dict]], metric: str = "mse") -> list[str]:
    """Markdown table: a row per evaluated step, a column per arm with ``metric`` (mean ± std
    over seeds, change vs step 0); a cell is filled once all of the arm's seeds reached it."""
    cols: dict[str, dict[int, str]] = {}
    for arm, by_seed in runs.items():
        cs = [curves(r)[metric] for r in by_seed.values() if curves(r)[metric]]
        if not cs:
            continue
        cols[f"{arm} ({len(cs)} seeds)"] = cells = {}
        for st in sorted(set.intersection(*[{x for x, _ in c} for c in cs])):
            vals = [at_step(c, st) for c in cs]
            (m, sd), (rm, rs) = mean_std(vals), mean_std([v / c[0][1] - 1 for v, c in zip(vals, cs, strict=True)])
            cells[st] = f"{m:.5f} ± {sd:.5f} ({100 * rm:+.1f}% ± {100 * rs:.1f}%)"
    steps = sorted({st for cells in cols.values() for st in cells})
    return (["| step | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"] +
            [f"| {st} | " + " | ".join(c.get(st, "") for c in cols.values()) + " |" for st in steps])


def markdown(summary: dict, notes: list[str], args) -> str:
    lines = [f"Command: `{args.command_line}`", ""]
    lines += [f"- {n}" for n in notes]
    lines += ["", "| arm | seeds | steps | train wall-clock / run, eval excluded (s) | " +
              " | ".join(["multi MSE", "multi PSNR", "multi SSIM", "1-step MSE", "1-step PSNR",
                          "1-step SSIM", "repetition"]) + " | multi-MSE change vs step 0 |",
              "|" + "---|" * 12]
    arms = {k: v for k, v in summary.items() if k != "common_step"}
    first = next(iter(arms.values()), None)
    if first and "mse" in first["metrics"]:
        row = ["pretrained (step 0)", str(len(first["seeds"])), "0", "-"]
        for k in METRICS:  # "–": not measured (a single-step model has no repetition rate)
            m = first["metrics"].get(k, {}).get("start")
            row.append(f"{m[0]:.4f} ± {m[1]:.4f}" if m else "–")
        lines.append("| " + " | ".join(row + ["-"]) + " |")
    for arm, s in arms.items():
        if "mse" not in s["metrics"]:
            continue
        row = [arm, str(len(s["seeds"])), str(s["steps"]), f"{s['wall_s'][0]:.0f}"]
        for k in METRICS:
            m = s["metrics"].get(k, {}).get("end")
            row.append(f"{m[0]:.4f} ± {m[1]:.4f}" if m else "–")
        rc = s["metrics"]["mse"]["rel_change"]
        row.append(f"{100 * rc[0]:+.1f}% ± {100 * rc[1]:.1f}%")
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Values are mean ± std over seeds (sample std); the step-0 row is the same "
              "pretrained model evaluated with each seed's arm (identical weights, same eval seed).",
              "", f"![held-out metrics vs step]({args.plot_name})"]
    if args.runs_for_curves:
        lines += ["", "Held-out multi-step MSE at every evaluation (mean ± std over seeds; change "
                  "vs step 0):", "", *curve_table(args.runs_for_curves),
                  "", "Single-step MSE:", "", *curve_table(args.runs_for_curves, "mse_1")]
        for k, label in (("stlpips", "multi-step"), ("stlpips_1", "single-step")):
            if any(curves(r)[k] for by in args.runs_for_curves.values() for r in by.values()):
                lines += ["", f"Held-out {label} ST-LPIPS (lower is better):", "",
                          *curve_table(args.runs_for_curves, k)]
    return "\n".join(lines)


def write_doc(doc: Path, block: str) -> None:
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    text = doc.read_text() if doc.exists() else f"# RLVR\n\n{start}\n{end}\n"
    if start not in text:
        text += f"\n{start}\n{end}\n"
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    doc.write_text(f"{head}{start}\n{block}\n{end}{tail}")
