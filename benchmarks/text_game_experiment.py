"""Text-game world model (issue 20): RLVR vs continued SFT from one SFT checkpoint, at equal compute.

One command per lane (CPU, one thread each; every (arm, seed) run is saved as it goes, so a
re-run skips finished runs and more seeds can be added later)::

    wm data build text-game --config data/recipes/text_game_tiny.yaml
    wm pretrain text-game --config data/recipes/text_game_pretrain_tiny.yaml --out runs/text_game/sft
    OMP_NUM_THREADS=1 python benchmarks/text_game_experiment.py --init runs/text_game/sft \\
        --arms rlvr_task_specific --seeds 0 1 2 --steps 100 --eval-every 25
    OMP_NUM_THREADS=1 python benchmarks/text_game_experiment.py --init runs/text_game/sft \\
        --arms sft --seeds 0 1 2          # after the matching RLVR runs: same CPU seconds each
    python benchmarks/text_game_experiment.py --report-only --plot docs/text_game_curves.png   # tables and the docs figure

Arms, all from the same SFT world model (the harness: ``rlvr_vs_sft.py``):

- ``rlvr_task_specific`` / ``rlvr_binary``: GRPO (``wm rlvr text-game``'s trainer) with the
  recipe ``data/recipes/text_game_rlvr_tiny.yaml``'s ``grpo:`` section, RLVR-World's RL sampling
  (every changed record plus 5 (task_specific) or 40 (binary) unchanged per 100; the unchanged
  draw seeded by the run's seed).
- ``sft``: continued SFT given exactly the training CPU seconds of the ``--match`` RLVR run of
  the same seed.

Held-out evaluation (greedy, ``--eval-items`` evenly spaced records of each set): held-out
records (``test.jsonl``: unseen episodes of the training games) and held-out games
(``test_games.jsonl``), accuracy (binary reward = 1) on all / changed / unchanged records, the
mean task-specific reward and the parse rate.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rlvr_vs_sft import Experiment, evaluate_sets, main, task_overrides  # noqa: E402
from rlvr_vs_sft_report import rlvr_bar  # noqa: E402

UNCHANGED_PER_CHANGED = {"task_specific": 0.05, "binary": 0.4}  # RLVR-World 100:5 and 100:40


def make_eval(args):
    """``fn(model) -> {"<set>/<metric>": value}`` on held-out records and held-out games, with
    the accuracy split into changed and unchanged records."""
    from worldmodels.tasks.text_game import TextGameTask
    from worldmodels.world_model import read_world_model_meta

    meta = read_world_model_meta(args.init)
    over = task_overrides(args)
    tasks = {"records": TextGameTask.from_meta(meta, args.init, **over),
             "games": TextGameTask.from_meta(meta, args.init, **{**over, "test": args.heldout})}
    raw = evaluate_sets(tasks, args.eval_items, args.eval_batch)

    def fn(model) -> dict[str, float]:
        m, out = raw(model), {}
        for name in tasks:
            acc, c, cc = m[f"{name}/accuracy"], m[f"{name}/changed_share"], m[f"{name}/correct_changed_share"]
            out.update({f"{name}/accuracy": acc, f"{name}/task_specific": m[f"{name}/task_specific"],
                        f"{name}/parsed": m[f"{name}/parsed"], f"{name}/changed_share": c,
                        f"{name}/acc_changed": cc / c if c else math.nan,
                        f"{name}/acc_unchanged": (acc - cc) / (1 - c) if c < 1 else math.nan})
        return out

    return fn


EXPERIMENT = Experiment(
    name="text-game", script="benchmarks/text_game_experiment.py",
    arms={"rlvr_task_specific": "task_specific", "rlvr_binary": "binary", "sft": None},
    sets=("records", "games"),
    columns=("accuracy", "acc_changed", "acc_unchanged", "task_specific", "parsed"),
    labels={"accuracy": "all", "acc_changed": "changed", "acc_unchanged": "unchanged",
            "task_specific": "task-specific reward", "parsed": "parsed"},
    paired_columns=("accuracy", "acc_changed", "acc_unchanged"),
    defaults={"init": "runs/text_game/sft", "heldout": "data/text_game/test_games.jsonl",
              "recipe": "data/recipes/text_game_rlvr_tiny.yaml", "out": "runs/text_game/experiment",
              "match": "rlvr_task_specific"},
    make_eval=make_eval,
    rl_task_kwargs=lambda reward, seed: {"rl_sampling": True, "rl_seed": seed,
                                         "rl_unchanged_ratio": UNCHANGED_PER_CHANGED[reward]},
    # "no change" predicts the current state: right on every unchanged record, wrong on the rest
    baseline_row=lambda init, st: ({"accuracy": 1 - init[f"{st}/changed_share"], "acc_changed": 0.0,
                                    "acc_unchanged": 1.0} if f"{st}/changed_share" in init else None),
    # issue 20: RLVR (task-specific) raises held-out accuracy >= 5 points and beats continued SFT
    bar=lambda s: rlvr_bar(s, "rlvr_task_specific", "records/accuracy", 0.05, "issue 20"),
    title="Text-game world model (tiny, CPU): RLVR vs continued SFT from one SFT model",
    colors={"rlvr_task_specific": "tab:red", "rlvr_binary": "tab:orange"},
)

if __name__ == "__main__":
    main(EXPERIMENT, __doc__)
