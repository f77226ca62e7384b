"""Text-game accuracy tables: changed / unchanged / all records, per game and per action verb
(GPT-simulator ``scripts/results_analysis.py``; reference ``language.md`` §3), and the
prompt-length distribution.

    rows = [{"source": "model", "game": "cooking", "verb": "take", "changed": True,
             "correct": 1.0, "task_specific": 1.3, "parsed": 1.0, "prompt_tokens": 812,
             "reduction": "none"}, ...]
    tables = accuracy_tables(rows)            # {"sources": {...}, "prompt_tokens": {...}}
    md = tables_markdown(tables)

A record is *correct* when the binary reward is 1 (every object unit and score unit right);
*changed* means the next state differs from the current one under exact equality
(``text_game_data.Transition.changed``). Accuracies are means of ``correct`` over the rows
of a group (all samples of a record count). ``no_change`` (predicting
``{"modified": [], "removed": [], "score": {}}``) is the baseline: right on exactly the
unchanged records.
"""

from __future__ import annotations

import statistics
from collections import defaultdict


def _group(rows: list[dict]) -> dict:
    n = len(rows)
    out = {"n": n, "accuracy": sum(r["correct"] for r in rows) / n if n else None}
    if n and "task_specific" in rows[0]:
        out["task_specific"] = sum(r["task_specific"] for r in rows) / n
    if n and "parsed" in rows[0]:
        out["parsed"] = sum(r["parsed"] for r in rows) / n
    return out


def _split(rows: list[dict]) -> dict:
    return {"changed": _group([r for r in rows if r["changed"]]),
            "unchanged": _group([r for r in rows if not r["changed"]]), "all": _group(rows)}


def accuracy_tables(rows: list[dict]) -> dict:
    """Per source (the model, each baseline): overall, per-game and per-verb splits, each
    ``{changed, unchanged, all}`` of ``{n, accuracy, task_specific, parsed}``; plus the
    prompt-length distribution of the model's rows (tokens: min, median, p90, max, mean;
    counts per reduction)."""
    by_source = defaultdict(list)
    for r in rows:
        by_source[r.get("source", "model")].append(r)
    out = {"sources": {}}
    for source, rs in by_source.items():
        games, verbs = defaultdict(list), defaultdict(list)
        for r in rs:
            games[r["game"]].append(r)
            verbs[r["verb"]].append(r)
        out["sources"][source] = {"overall": _split(rs),
                                  "per_game": {g: _split(v) for g, v in sorted(games.items())},
                                  "per_verb": {g: _split(v) for g, v in sorted(verbs.items())}}
    lengths = sorted(r["prompt_tokens"] for r in by_source.get("model", []) if "prompt_tokens" in r)
    if lengths:
        reductions = defaultdict(int)
        for r in by_source["model"]:
            reductions[r.get("reduction", "none")] += 1
        out["prompt_tokens"] = {"min": lengths[0], "median": statistics.median(lengths),
                                "p90": lengths[min(len(lengths) - 1, int(0.9 * len(lengths)))],
                                "max": lengths[-1], "mean": sum(lengths) / len(lengths),
                                "reductions": dict(reductions)}
    return out


def _pct(group: dict) -> str:
    return "–" if group["accuracy"] is None else f"{100 * group['accuracy']:.1f} ({group['n']})"


def _table(title: str, key: str, sources: dict) -> list[str]:
    names = list(sources)
    lines = [f"### {title}", "", "| " + key + " | " + " | ".join(
        f"{s} changed | {s} unchanged | {s} all" for s in names) + " |",
        "|---|" + "---|---|---|" * len(names)]
    labels = sorted({k for s in names for k in sources[s]})
    for label in labels:
        cells = []
        for s in names:
            g = sources[s].get(label)
            cells += [_pct(g[k]) if g else "–" for k in ("changed", "unchanged", "all")]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines + [""]


def tables_markdown(tables: dict) -> str:
    """Markdown of :func:`accuracy_tables`: accuracy % (records) per split and source."""
    src = tables["sources"]
    lines = ["## Accuracy % (records): changed / unchanged / all", ""]
    lines += _table("Overall", "split", {s: {"all records": v["overall"]} for s, v in src.items()})
    model = src.get("model")
    if model and "task_specific" in model["overall"]["all"]:
        o = model["overall"]["all"]
        lines += [f"Model: mean task-specific reward {o['task_specific']:.3f}, parse rate "
                  f"{100 * o.get('parsed', 0):.1f} %.", ""]
    lines += _table("Per game", "game", {s: v["per_game"] for s, v in src.items()})
    lines += _table("Per action verb", "verb", {s: v["per_verb"] for s, v in src.items()})
    pt = tables.get("prompt_tokens")
    if pt:
        red = ", ".join(f"{k}: {v}" for k, v in sorted(pt["reductions"].items()))
        lines += ["### Prompt length (tokens)", "",
                  f"min {pt['min']}, median {pt['median']:g}, p90 {pt['p90']}, max {pt['max']}, "
                  f"mean {pt['mean']:.0f}; reductions: {red}", ""]
    return "\n".join(lines)
