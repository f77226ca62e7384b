"""One evaluation loop for every modality: sample predictions, score them with the task's
metrics, and score the task's baselines on the same items.

    from worldmodels.evaluate import EvalConfig, evaluate
    res = evaluate(model, task, task.dataset("test"), EvalConfig(items=64, n_samples=4))
    res["metrics"]["mse"]       # {"mean", "best_of_n", "std", "ci95": [lo, hi]}
    res["baselines"]["copy_last"]["mse"]["mean"]

Used by ``wm eval <modality>``, by RLVR's periodic held-out evaluation (:func:`flat`) and by the
benchmarks. Per metric (``task.metrics``: one value per sample):

- ``mean``: over all items and samples;
- ``best_of_n``: the best of an item's ``n_samples`` values (max or min by
  ``task.higher_is_better``), averaged over items (RLVR-World's report);
- ``std``: the mean over items of the unbiased std between an item's samples (0 when n = 1);
- ``ci95``: a percentile bootstrap 95 % interval of ``mean`` over items (items resampled,
  each item's samples averaged first), so it reflects how many items were evaluated;
- ``pass_at_k``: for a right/wrong metric (one the task lists in ``Task.right_or_wrong``) with
  n > 1 samples, the unbiased pass@k (:func:`worldmodels.metrics.pass_at_k`) for k = 1, 2, 4, …, n.

Items are ``cfg.items`` evenly spaced indices of the dataset (all when it has fewer).
Sampling is seeded (``cfg.seed``), so two models are compared on the same random stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where it is used, so configs load fast for `wm --help`
    import torch


@dataclass
class EvalConfig:
    """Held-out evaluation settings.

    items: number of dataset items (clips, records), evenly spaced; 0 disables evaluation.
    n_samples: rollouts per item; metrics report the mean and the best of n.
    temperature: sampling temperature (> 0).
    top_k: sample only from the k most likely tokens (null: the whole allowed vocabulary).
    seed: sampling seed (fixed, so differences between evaluations come from the model).
    batch_size: items per rollout call.
    bootstrap: bootstrap resamples for the 95 % interval over items (0: no interval).
    """

    items: int = 64
    n_samples: int = 1
    temperature: float = 1.0
    top_k: int | None = None
    seed: int = 1234
    batch_size: int = 32
    bootstrap: int = 1000

    def __post_init__(self) -> None:
        if self.items < 0 or self.n_samples < 1 or self.batch_size < 1 or self.bootstrap < 0:
            raise ValueError(f"eval: items >= 0, n_samples >= 1, batch_size >= 1 and bootstrap >= 0 "
                             f"required, got {self}")
        from worldmodels.train.grpo_config import MIN_TEMPERATURE

        if not (math.isfinite(self.temperature) and self.temperature >= MIN_TEMPERATURE):
            raise ValueError(f"eval.temperature must be a finite number >= {MIN_TEMPERATURE}, "
                             f"got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"eval.top_k must be >= 1 or null, got {self.top_k}")


def pick_items(n_available: int, n_wanted: int) -> list[int]:
    """``n_wanted`` evenly spaced indices of ``range(n_available)`` (all when fewer)."""
    import torch

    if n_available == 0 or n_wanted == 0:
        return []
    k = min(n_wanted, n_available)
    return torch.linspace(0, n_available - 1, k).round().long().unique().tolist()


def bootstrap_ci(values: torch.Tensor, resamples: int = 1000, seed: int = 0) -> list[float] | None:
    """Percentile bootstrap 95 % interval of the mean of ``values`` (N,); None when N < 2."""
    import torch

    v = values.double().flatten()
    v = v[torch.isfinite(v)]
    if v.numel() < 2 or resamples < 1:
        return None
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(v.numel(), (resamples, v.numel()), generator=g)
    means = v[idx].mean(1)
    return [float(means.quantile(0.025)), float(means.quantile(0.975))]


def _summary(values: torch.Tensor, higher: bool | None, resamples: int, right_or_wrong: bool = False,
             name: str = "metric") -> dict:
    """values (items, n) -> mean / best_of_n / std / ci95 (best-of-n: the max unless ``higher``
    is False; None, a diagnostic without direction, takes the max); plus ``pass_at_k`` {k: mean
    over items} for k = 1, 2, 4, …, n when n > 1 and the metric is ``right_or_wrong`` (declared by
    the task, never guessed from the values: a continuous metric can be all 0/1 by chance).
    Raises ValueError naming the metric when a right/wrong metric holds a value other than 0 or 1."""
    from worldmodels.metrics import best_of_n, pass_at_k, pass_at_k_ks

    stats = best_of_n(values, higher is not False)
    out = {"mean": float(values.double().mean()), "best_of_n": stats["mean"], "std": stats["std"],
           "ci95": bootstrap_ci(values.double().mean(1), resamples)}
    if right_or_wrong and not bool(((values == 0) | (values == 1)).all()):
        raise ValueError(f"metric {name!r} is declared right/wrong (Task.right_or_wrong) but holds values "
                         "other than 0 and 1")
    if right_or_wrong and values.shape[1] > 1:
        out["pass_at_k"] = {str(k): float(pass_at_k(values, k).mean()) for k in pass_at_k_ks(values.shape[1])}
    return out


def evaluate(model, task, dataset, cfg: EvalConfig | None = None, *, device: torch.device | str | None = None,
             baselines: bool = True, examples: int = 0, out_dir: str | Path | None = None,
             progress: bool = False) -> dict[str, Any]:
    """Sample ``cfg.n_samples`` predictions per item of ``dataset`` and score them.

    model: an HF-style causal LM (the world model's backbone); task: its Task; dataset: items of
    ``task`` (e.g. ``task.dataset("test")``). ``baselines``: also score ``task.baselines(batch)``;
    ``examples``: write that many examples with ``task.save_examples`` into ``out_dir``.
    Returns ``{"items", "n_samples", "temperature", "top_k", "seed", "metrics": {name: summary},
    "baselines": {baseline: {name: summary}}, "vs_baselines": {baseline: {name: paired
    difference}}, "examples": [paths], "per_item": {"index": [dataset index], "metrics": {name:
    [mean over an item's samples]}, "baselines": {baseline: {name: [value]}}}}`` (see
    :func:`paired_difference`; ``per_item`` is what :func:`compare_runs` pairs across models).
    Raises ValueError when the dataset is empty.
    """
    import torch

    with torch.no_grad():
        return _evaluate(model, task, dataset, cfg or EvalConfig(), device, baselines, examples,
                         out_dir, progress)


def _evaluate(model, task, dataset, cfg, device, baselines, examples, out_dir, progress) -> dict:
    import torch
    from tqdm.auto import tqdm

    from worldmodels.tasks.base import to_device
    from worldmodels.train.rollout import rollout

    device = torch.device(device) if device is not None else next(model.parameters()).device
    idx = pick_items(len(dataset), cfg.items)
    if not idx:
        raise ValueError(f"evaluation needs items but the dataset is empty (or items=0): "
                         f"{len(dataset)} available, {cfg.items} asked")
    n = cfg.n_samples
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    was_training = model.training
    model.eval()

    def generate(req):
        return rollout(model, req.to(device), temperature=cfg.temperature, top_k=cfg.top_k,
                       generator=gen)

    sample = getattr(task, "sample_predictions", None) or (
        lambda gen_fn, b: task.decode(b, gen_fn(task.rollout_request(b))))
    values: dict[str, list[torch.Tensor]] = {}
    base_values: dict[str, dict[str, list[torch.Tensor]]] = {}
    written: list[str] = []
    steps = range(0, len(idx), cfg.batch_size)
    for s in tqdm(steps, desc="eval", leave=False, disable=not progress):
        picked = idx[s : s + cfg.batch_size]
        batch = task.collate([dataset[i] for i in picked])
        group = task.repeat(batch, n)
        preds = sample(generate, group)
        items = to_device(task.reward_items(group), "cpu")
        for name, v in task.metrics(preds, items).items():
            values.setdefault(name, []).append(v.detach().double().cpu().reshape(len(picked), n))
        if baselines:
            base_items = to_device(task.reward_items(batch), "cpu")
            for bname, bpred in task.baselines(batch).items():
                for name, v in task.metrics(bpred, base_items).items():
                    base_values.setdefault(bname, {}).setdefault(name, []).append(
                        v.detach().double().cpu().reshape(len(picked), 1))
        if examples > len(written) and out_dir is not None:
            first = [j * n for j in range(min(len(picked), examples - len(written)))]
            rows = {k: (v[first] if torch.is_tensor(v) else ([v[j] for j in first] if isinstance(v, list) else v))
                    for k, v in preds.items()} if isinstance(preds, dict) else [preds[j] for j in first]
            names = [f"item_{picked[j]:05d}" for j in range(len(first))]
            written += task.save_examples(out_dir, batch, rows, names)
    if was_training:
        model.train()
    hib, binary = task.higher_is_better, set(task.right_or_wrong)
    vals = {k: torch.cat(v) for k, v in values.items()}                  # (items, n) per metric
    base = {b: {k: torch.cat(v) for k, v in d.items()} for b, d in base_values.items()}  # (items, 1)
    res = {"items": len(idx), "n_samples": n, "temperature": cfg.temperature, "top_k": cfg.top_k,
           "seed": cfg.seed,
           "metrics": {k: _summary(v, hib.get(k, True), cfg.bootstrap, k in binary, k) for k, v in vals.items()},
           "baselines": {b: {k: _summary(v, hib.get(k, True), cfg.bootstrap, k in binary, k) for k, v in d.items()}
                         for b, d in base.items()},
           "vs_baselines": {b: {k: paired_difference(vals[k], v, cfg.bootstrap) for k, v in d.items() if k in vals}
                            for b, d in base.items()},
           "examples": written,
           "per_item": {"index": list(idx),
                        "metrics": {k: v.double().mean(1).tolist() for k, v in vals.items()},
                        "higher_is_better": {k: hib.get(k, True) for k in vals},
                        "baselines": {b: {k: v.double().mean(1).tolist() for k, v in d.items()}
                                      for b, d in base.items()}}}
    return res


def paired_difference(model: torch.Tensor, baseline: torch.Tensor, resamples: int = 1000,
                      seed: int = 0) -> dict:
    """Model minus baseline on the same items: ``model`` (items, n) samples, ``baseline``
    (items, 1). Each item's samples are averaged first; the interval is a percentile bootstrap
    over items of the mean difference (pairing removes the between-item spread, which is most of
    it). Returns {"mean", "ci95": [lo, hi] or None}; e.g. an MSE difference whose whole interval
    is below 0 means the model beats the baseline on these items."""
    d = model.double().mean(1) - baseline.double().reshape(-1)
    return {"mean": float(d.mean()), "ci95": bootstrap_ci(d, resamples, seed)}


def flat(res: dict) -> dict[str, float]:
    """``{name: mean}`` plus ``{name}_best`` (best of n) when n_samples > 1: the scalars RLVR logs
    as ``eval/<name>`` during training."""
    out = {}
    for k, v in res["metrics"].items():
        out[k] = v["mean"]
        if res["n_samples"] > 1:
            out[f"{k}_best"] = v["best_of_n"]
    return out


def eval_fn(task, cfg: EvalConfig, device=None, split: str = "test"):
    """``fn(model) -> {name: mean}`` (:func:`flat`) on ``cfg.items`` items of ``split``, the
    dataset built once: the held-out hook RLVR and the benchmarks call during training."""
    dataset = task.dataset(split)

    def fn(model) -> dict[str, float]:
        return flat(evaluate(model, task, dataset, cfg, device=device))

    return fn


def compare_runs(a: list[dict], b: list[dict], metric: str, resamples: int = 10000,
                 seed: int = 0) -> dict:
    """Paired comparison of two arms (e.g. 3 RLVR seeds vs 3 continued-SFT seeds) evaluated on
    the same items: each arm's runs are averaged per item, then the per-item difference A − B is
    bootstrapped over items (percentile, ``resamples``). Pairing by item removes the spread
    between items, so a small difference can be resolved that separate intervals would hide.

    a, b: ``per_item`` dicts of :func:`evaluate` results (``wm eval`` writes them to
    ``eval_items.json``), one per run. ``metric``: a key of their ``metrics``.
    Returns ``{"metric", "items", "a": {"mean", "runs": [mean per run]}, "b": {...},
    "diff": {"mean", "ci95"}, "a_higher", "b_higher", "higher_is_better", "a_better",
    "b_better"}``: the shares of items where one arm's mean is strictly higher (ties are
    neither), and, when the runs record the metric's direction, where it is better (else None).
    Raises ValueError when an arm is empty, a run lacks ``metric``, or the runs were evaluated
    on different items.
    """
    import torch

    if not a or not b:
        raise ValueError("compare_runs: each arm needs at least one run")
    index = a[0]["index"]
    for arm, runs in (("A", a), ("B", b)):
        for i, run in enumerate(runs):
            if run["index"] != index:
                raise ValueError(f"compare_runs: run {i} of arm {arm} was evaluated on other items "
                                 f"({len(run['index'])} items) than run 0 of arm A ({len(index)}); "
                                 f"evaluate both with the same data and --items")
            if metric not in run["metrics"]:
                raise ValueError(f"compare_runs: run {i} of arm {arm} has no metric {metric!r} "
                                 f"(has {sorted(run['metrics'])})")

    def arm(runs: list[dict]) -> torch.Tensor:  # (runs, items)
        return torch.tensor([run["metrics"][metric] for run in runs], dtype=torch.float64)

    va, vb = arm(a), arm(b)
    d = va.mean(0) - vb.mean(0)
    out = {"metric": metric, "items": len(index),
           "a": {"mean": float(va.mean()), "runs": [float(x) for x in va.mean(1)]},
           "b": {"mean": float(vb.mean()), "runs": [float(x) for x in vb.mean(1)]},
           "diff": paired_difference(va.T, vb.mean(0), resamples, seed),  # A's runs as its samples
           "a_higher": float((d > 0).double().mean()), "b_higher": float((d < 0).double().mean())}
    hib = a[0].get("higher_is_better", {}).get(metric)
    out["higher_is_better"] = hib
    out["a_better"] = None if hib is None else (out["a_higher"] if hib else out["b_higher"])
    out["b_better"] = None if hib is None else (out["b_higher"] if hib else out["a_higher"])
    return out


def pool_folds(folds: list[dict], metric: str, baseline: str, resamples: int = 10000,
               seed: int = 0, versus: list[dict] | None = None) -> dict:
    """One model recipe against a baseline over cross-validation folds: each fold is a model
    trained without, and evaluated on, its own held-out episodes, so the folds' items are
    disjoint and can be pooled. The per-item difference model − baseline of every fold is
    bootstrapped over all pooled items (percentile, ``resamples``), as :func:`paired_difference`
    does within one evaluation; with k folds the interval rests on k times the items.

    folds: ``per_item`` dicts of :func:`evaluate` results (``eval_items.json``), one per fold,
    each with ``baselines[baseline][metric]``. Returns ``{"metric", "baseline", "items",
    "model": mean, "baseline_mean": mean, "diff": {"mean", "ci95"}, "higher_is_better",
    "model_better": share of items where the model is strictly better (None when the direction
    is not recorded), "folds": [{"items", "model", "baseline", "diff"} per fold]}``.
    ``versus``: another recipe's folds, in the same order and evaluated on the same items (e.g.
    from scratch vs fine-tuned); adds ``"versus": {"model": mean, "diff": {"mean", "ci95"}}``,
    this recipe minus that one paired per item over all folds, and ``"folds"[k]["versus"]``.
    Raises ValueError on no folds, a fold without the metric or baseline, two folds with the
    same model, or two folds of the same data that share an evaluated episode file
    (``test_files``, written by `wm eval video`; else the recorded ``episodes.held_out``) or an
    evaluated record (``index``: the record numbers `wm eval text-game` / `web` evaluated of their
    data file); data compared as real paths from the current directory. Pooled items must be
    disjoint.
    """
    import os

    import torch

    if not folds:
        raise ValueError("pool_folds: no folds")
    seen: dict = {}
    splits: list[tuple] = []  # (fold, data, evaluated episode files)
    parts, per_fold = [], []
    for i, f in enumerate(folds):
        m = f.get("model")
        if m is not None and m in seen:
            raise ValueError(f"pool_folds: folds {seen[m]} and {i} are the same model {m!r}; each fold "
                             f"is a model trained without its own held-out episodes")
        seen[m] = i
        held = f.get("test_files") or (f.get("episodes") or {}).get("held_out")
        what = "episodes"
        if not held and f.get("index") is not None:  # text game, web: records of one data file
            held, what = [f"record {k}" for k in f["index"]], "records"
        if held:
            held = {str(h).removesuffix(".npz") for h in held}
            data_i = os.path.realpath(f["data"]) if f.get("data") else None
            for j, data, other in splits:
                if data == data_i and held & other:
                    raise ValueError(f"pool_folds: folds {j} and {i} were evaluated on the same {what} of "
                                     f"{data} ({', '.join(sorted(held & other)[:4])}); each fold must be "
                                     f"evaluated on {what} no other fold holds out")
            splits.append((i, data_i, held))
        if metric not in f["metrics"]:
            raise ValueError(f"pool_folds: fold {i} has no metric {metric!r} (has {sorted(f['metrics'])})")
        base = f.get("baselines", {}).get(baseline)
        if base is None or metric not in base:
            raise ValueError(f"pool_folds: fold {i} has no baseline {baseline!r} with {metric!r} "
                             f"(baselines: {sorted(f.get('baselines', {}))})")
        mv = torch.tensor(f["metrics"][metric], dtype=torch.float64)
        bv = torch.tensor(base[metric], dtype=torch.float64)
        parts.append((mv, bv))
        per_fold.append({"items": len(mv), "model": float(mv.mean()), "baseline": float(bv.mean()),
                         "diff": float((mv - bv).mean())})
    mv = torch.cat([p[0] for p in parts])
    bv = torch.cat([p[1] for p in parts])
    hib = folds[0].get("higher_is_better", {}).get(metric)
    d = mv - bv
    out = {"metric": metric, "baseline": baseline, "items": len(mv), "model": float(mv.mean()),
           "baseline_mean": float(bv.mean()),
           "diff": paired_difference(mv[:, None], bv, resamples, seed),
           "higher_is_better": hib,
           "model_better": None if hib is None else float(((d > 0) if hib else (d < 0)).double().mean()),
           "folds": per_fold}
    if versus is not None:
        if len(versus) != len(folds):
            raise ValueError(f"pool_folds: {len(folds)} folds but {len(versus)} versus folds")
        other = []
        for i, (f, g) in enumerate(zip(folds, versus, strict=True)):
            if g["index"] != f["index"] or g.get("test_files") != f.get("test_files"):
                raise ValueError(f"pool_folds: versus fold {i} was evaluated on other items than fold {i}")
            if metric not in g["metrics"]:
                raise ValueError(f"pool_folds: versus fold {i} has no metric {metric!r}")
            ov = torch.tensor(g["metrics"][metric], dtype=torch.float64)
            per_fold[i]["versus"] = float(ov.mean())
            other.append(ov)
        ov = torch.cat(other)
        out["versus"] = {"model": float(ov.mean()), "diff": paired_difference(mv[:, None], ov, resamples, seed)}
    return out

