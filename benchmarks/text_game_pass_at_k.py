"""pass@k of text-game world models on changed / unchanged / all records, from `wm eval text-game`
folders evaluated with several samples per record (results log 2026-12-01, plan E).

GRPO reinforces right answers the model already samples, so how far its sharpening can lift
greedy accuracy is bounded by what k samples find (Yue et al. 2025). This table shows that bound
per record kind; rows are models, columns k = 1, 2, 4, …, n (unbiased pass@k, Chen et al. 2021,
:func:`worldmodels.metrics.pass_at_k`)::

    for m in runs/tg5/sft runs/tg5/experiment/models/{rlvr_task_specific,sft}_s{0,1,2}; do
        wm eval text-game --model $m --data data/text_game_x5/test.jsonl --items 200 --samples 32 \\
            --top-k 0 --examples 0 --out runs/tg5e/$(basename $m)
    done
    python benchmarks/text_game_pass_at_k.py runs/tg5e/* --out runs/tg5e/pass_at_k.json

Each folder needs ``eval.json`` (for ``n_samples``) and ``eval_items.json`` (per record: the
share of right samples, ``accuracy``, and whether the record changes the state, ``changed_share``).
Prints a markdown table; ``--out`` also writes the numbers as JSON (fractions).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from worldmodels.metrics import pass_at_k, pass_at_k_ks

SPLITS = ("changed", "unchanged", "all")


def load(folder: str | Path) -> tuple[int, list[int], list[bool]]:
    """(n samples, right samples per record, record changes the state) of one eval folder.
    Raises FileNotFoundError / ValueError naming the file when it is missing or not such an eval."""
    d = Path(folder)
    for name in ("eval.json", "eval_items.json"):
        if not (d / name).is_file():
            raise FileNotFoundError(f"{d / name}: missing (run `wm eval text-game --samples N --out {d}`)")
    n = json.loads((d / "eval.json").read_text()).get("n_samples")
    items = json.loads((d / "eval_items.json").read_text()).get("metrics", {})
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"{d / 'eval.json'}: no n_samples >= 1")
    if "accuracy" not in items or "changed_share" not in items:
        raise ValueError(f"{d / 'eval_items.json'}: needs per-item 'accuracy' and 'changed_share' "
                         f"(a text-game evaluation), has {sorted(items)}")
    right = [round(a * n) for a in items["accuracy"]]
    if any(abs(r - a * n) > 1e-6 for r, a in zip(right, items["accuracy"], strict=True)):
        raise ValueError(f"{d / 'eval_items.json'}: accuracy is not a count of right samples out of {n}")
    return n, right, [bool(c) for c in items["changed_share"]]


def table(folder: str | Path) -> dict[str, dict]:
    """{split: {"records": int, "pass_at_k": {k: fraction}}} for one eval folder."""
    n, right, changed = load(folder)
    out = {}
    for split in SPLITS:
        rows = [r for r, c in zip(right, changed, strict=True)
                if split == "all" or c == (split == "changed")]
        if not rows:
            continue
        correct = torch.tensor([[1.0] * r + [0.0] * (n - r) for r in rows])
        out[split] = {"records": len(rows),
                      "pass_at_k": {k: float(pass_at_k(correct, k).mean()) for k in pass_at_k_ks(n)}}
    return out


def markdown(results: dict[str, dict]) -> str:
    ks = sorted({k for t in results.values() for s in t.values() for k in s["pass_at_k"]})
    lines = ["| model | records | n | " + " | ".join(f"pass@{k}" for k in ks) + " |",
             "|---|---|---|" + "---|" * len(ks)]
    for split in SPLITS:
        for name, t in results.items():
            if split in t:
                p = t[split]["pass_at_k"]
                lines.append(f"| {name} | {split} | {t[split]['records']} | "
                             + " | ".join(f"{100 * p[k]:.1f}" if k in p else "–" for k in ks) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", help="`wm eval text-game --samples N` output folders")
    ap.add_argument("--out", help="also write the numbers here (JSON)")
    args = ap.parse_args(argv)
    results = {Path(f).name: table(f) for f in args.folders}
    print(markdown(results), end="")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
