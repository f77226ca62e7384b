"""Web-DOM world model (issue 21): RLVR with RLVR-World's F1 reward vs continued SFT from one
SFT checkpoint, at equal compute (the harness: ``rlvr_vs_sft.py``).

One command per lane (CPU, one thread each; finished (arm, seed) runs are skipped on a re-run)::

    wm data build web --config data/recipes/web_small.yaml
    wm pretrain web --config data/recipes/web_pretrain_small.yaml        # -> runs/web/sft
    OMP_NUM_THREADS=1 python benchmarks/web_experiment.py --arms rlvr_f1 --seeds 0 1 2
    OMP_NUM_THREADS=1 python benchmarks/web_experiment.py --arms sft --seeds 0 1 2
    python benchmarks/web_experiment.py --report-only --plot docs/web_curves.png   # tables and the docs figure

Arms, both from the same SFT world model:

- ``rlvr_f1``: GRPO (``wm rlvr web``'s trainer) with ``data/recipes/web_rlvr_tiny.yaml``'s
  ``grpo:`` section and the ``f1`` reward (reference ``language.md`` §1.3).
- ``sft``: continued SFT given exactly the training CPU seconds of the ``rlvr_f1`` run of the
  same seed.

Held-out evaluation (greedy, ``--eval-items`` evenly spaced transitions of each set): held-out
episodes of the training task families (``test.json``) and a held-out task family
(``test_family.json``): F1, precision, recall (pooled over the three sections, set semantics,
``web_metrics``), exact match and the parse rate; the "no change" answer (``None`` in every
section) is scored on the same transitions as the baseline row.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rlvr_vs_sft import Experiment, evaluate_sets, main, task_overrides  # noqa: E402
from rlvr_vs_sft_report import rlvr_bar  # noqa: E402

COLUMNS = ("f1", "precision", "recall", "exact", "parsed")


def make_eval(args):
    """``fn(model) -> {"<set>/<metric>": value}`` on held-out episodes and the held-out family,
    plus ``"<set>/no_change/<metric>"``: the "no change" answer on the same transitions."""
    from worldmodels.evaluate import pick_items
    from worldmodels.tasks.web import NO_CHANGE_TEXT, WebTask
    from worldmodels.tasks.web_metrics import transition_metrics
    from worldmodels.world_model import read_world_model_meta

    meta = read_world_model_meta(args.init)
    over = task_overrides(args)
    tasks = {"records": WebTask.from_meta(meta, args.init, **over),
             "family": WebTask.from_meta(meta, args.init, **{**over, "test": args.heldout})}
    raw = evaluate_sets(tasks, args.eval_items, args.eval_batch)
    base = {}
    for name, t in tasks.items():
        ds = t.dataset("test")
        gold = t.reward_items(t.collate([ds[i] for i in pick_items(len(ds), args.eval_items)]))["gold"]
        rows = [transition_metrics(NO_CHANGE_TEXT, g) for g in gold]
        base.update({f"{name}/no_change/{k}": sum(r[k] for r in rows) / len(rows) for k in rows[0]})
    return lambda model: {**raw(model), **base}


EXPERIMENT = Experiment(
    name="web", script="benchmarks/web_experiment.py",
    arms={"rlvr_f1": "f1", "sft": None},
    sets=("records", "family"),
    columns=COLUMNS,
    labels={"f1": "F1", "precision": "precision", "recall": "recall", "exact": "exact", "parsed": "parsed"},
    paired_columns=("f1", "precision", "recall"),
    defaults={"init": "runs/web/sft", "heldout": "data/web_small/test_family.json",
              "recipe": "data/recipes/web_rlvr_tiny.yaml", "out": "runs/web/experiment",
              "match": "rlvr_f1", "eval_items": 200, "eval_batch": 16},
    make_eval=make_eval,
    baseline_row=lambda init, st: {c: init[f"{st}/no_change/{c}"] for c in COLUMNS
                                   if f"{st}/no_change/{c}" in init} or None,
    # issue 21: RLVR raises held-out F1 over SFT and beats continued SFT
    bar=lambda s: rlvr_bar(s, "rlvr_f1", "records/f1", 0.0, "issue 21"),
    title="Web world model (tiny, CPU): RLVR (F1) vs continued SFT from one SFT model",
    colors={"rlvr_f1": "tab:red"},
)

if __name__ == "__main__":
    main(EXPERIMENT, __doc__)
