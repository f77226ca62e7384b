"""worldmodels/evaluate.py statistics against independent computations."""

import numpy as np
import pytest
import torch

from worldmodels.evaluate import (
    EvalConfig,
    _summary,
    bootstrap_ci,
    compare_runs,
    flat,
    paired_difference,
    pick_items,
    pool_folds,
)


def test_pick_items_are_evenly_spaced_and_unique():
    assert pick_items(10, 4) == [0, 3, 6, 9]
    assert pick_items(3, 10) == [0, 1, 2]
    assert pick_items(0, 5) == [] and pick_items(5, 0) == []


def test_bootstrap_interval_matches_numpy_percentiles_of_resampled_means():
    v = torch.tensor([0.1, 0.4, 0.35, 0.8, 0.2, 0.5], dtype=torch.float64)
    lo, hi = bootstrap_ci(v, resamples=500, seed=3)
    g = torch.Generator().manual_seed(3)
    idx = torch.randint(len(v), (500, len(v)), generator=g).numpy()
    means = v.numpy()[idx].mean(1)
    assert lo == pytest.approx(np.quantile(means, 0.025)) and hi == pytest.approx(np.quantile(means, 0.975))
    assert lo < float(v.mean()) < hi
    assert bootstrap_ci(torch.tensor([1.0])) is None  # one item: no interval


def test_summary_best_of_n_follows_the_metric_direction():
    vals = torch.tensor([[1.0, 3.0], [2.0, 6.0]], dtype=torch.float64)  # 2 items x 2 samples
    lower = _summary(vals, higher=False, resamples=0)
    higher = _summary(vals, higher=True, resamples=0)
    assert lower["mean"] == pytest.approx(3.0)
    assert lower["best_of_n"] == pytest.approx(1.5) and higher["best_of_n"] == pytest.approx(4.5)
    assert lower["std"] == pytest.approx((np.std([1, 3], ddof=1) + np.std([2, 6], ddof=1)) / 2)
    assert lower["ci95"] is None
    res = {"n_samples": 2, "metrics": {"mse": lower}}
    assert flat(res) == {"mse": pytest.approx(3.0), "mse_best": pytest.approx(1.5)}


def test_summary_reports_pass_at_k_only_for_declared_right_or_wrong_metrics_with_samples():
    right = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 1.0]])
    p = _summary(right, higher=True, resamples=0, right_or_wrong=True)["pass_at_k"]
    # by hand: item 1 has c=1 of 4 (pass@1 1/4, pass@2 1-C(3,2)/C(4,2)=1/2, pass@4 1), item 2 none,
    # item 3 c=3 (pass@1 3/4, pass@2 1, pass@4 1)
    assert p == {"1": pytest.approx(1 / 3), "2": pytest.approx(0.5), "4": pytest.approx(2 / 3)}
    assert p["4"] == pytest.approx(_summary(right, higher=True, resamples=0)["best_of_n"])
    # a continuous metric (F1) that happens to be all 0/1 gets none: the task declares, values don't
    assert "pass_at_k" not in _summary(right, higher=True, resamples=0)
    assert "pass_at_k" not in _summary(right[:, :1], higher=True, resamples=0, right_or_wrong=True)  # one sample
    with pytest.raises(ValueError, match="'accuracy' is declared right/wrong"):
        _summary(right * 0.5, higher=True, resamples=0, right_or_wrong=True, name="accuracy")


@pytest.mark.parametrize("name", ["text_game", "web", "web_policy", "web_value"])
def test_declared_right_or_wrong_metrics_are_metrics_with_a_direction(name):
    """Every name a task lists in ``right_or_wrong`` is one of its metrics and is higher-is-better."""
    import importlib

    mod = importlib.import_module(f"worldmodels.tasks.{name}")
    cls = next(c for c in vars(mod).values() if isinstance(c, type) and getattr(c, "name", None) == name)
    assert cls.right_or_wrong, name
    for metric in cls.right_or_wrong:
        assert cls.higher_is_better.get(metric) is True, (name, metric)


@pytest.mark.parametrize("bad", [dict(items=-1), dict(n_samples=0), dict(temperature=float("nan")),
                                 dict(top_k=0), dict(bootstrap=-1)])
def test_eval_config_rejects_values_that_cannot_run(bad):
    with pytest.raises(ValueError, match="eval"):
        EvalConfig(**bad)


def test_paired_difference_removes_the_between_item_spread():
    """Items differ a lot, the model is always 0.01 better: the paired interval excludes 0
    while the two unpaired intervals overlap."""
    base = torch.tensor([[0.1], [0.5], [0.9], [0.3], [0.7], [0.2]], dtype=torch.float64)
    model = (base - 0.01).repeat(1, 2)            # 2 samples per item, each 0.01 lower
    d = paired_difference(model, base, resamples=400)
    assert d["mean"] == pytest.approx(-0.01)
    assert d["ci95"][0] == pytest.approx(-0.01) and d["ci95"][1] == pytest.approx(-0.01)
    m_ci, b_ci = bootstrap_ci(model.mean(1), 400), bootstrap_ci(base.reshape(-1), 400)
    assert m_ci[1] > b_ci[0]                        # unpaired: the intervals overlap


def _run(values, index=(0, 3, 6, 9), metric="f1"):
    return {"index": list(index), "metrics": {metric: list(values)}, "baselines": {}}


def test_compare_runs_averages_each_arm_per_item_then_bootstraps_the_difference():
    a = [_run([0.2, 0.5, 0.9, 0.4]), _run([0.4, 0.5, 0.7, 0.6])]  # per item: 0.3 0.5 0.8 0.5
    b = [_run([0.1, 0.5, 0.6, 0.5])]
    res = compare_runs(a, b, "f1", resamples=300, seed=1)
    d = np.array([0.2, 0.0, 0.2, 0.0])                              # A - B per item, by hand
    assert res["items"] == 4 and res["diff"]["mean"] == pytest.approx(d.mean())
    assert res["a"]["runs"] == pytest.approx([0.5, 0.55]) and res["b"]["mean"] == pytest.approx(0.425)
    assert res["a_higher"] == 0.5 and res["b_higher"] == 0.0       # ties count for neither
    assert res["a_better"] is None                                  # direction not recorded
    lower = [{**r, "higher_is_better": {"f1": False}} for r in a]   # e.g. an error metric
    res = compare_runs(lower, b, "f1", resamples=300, seed=1)
    assert res["a_better"] == 0.0 and res["b_better"] == 0.5
    assert res["diff"]["ci95"] == pytest.approx(bootstrap_ci(torch.tensor(d), 300, 1))


def test_compare_runs_refuses_runs_on_other_items_or_without_the_metric():
    with pytest.raises(ValueError, match="run 1 of arm B was evaluated on other items"):
        compare_runs([_run([1, 2, 3, 4])], [_run([1, 2, 3, 4]), _run([1, 2, 3], index=(0, 1, 2))], "f1")
    with pytest.raises(ValueError, match="run 0 of arm B has no metric 'f1'"):
        compare_runs([_run([1, 2, 3, 4])], [_run([1, 2, 3, 4], metric="acc")], "f1")
    with pytest.raises(ValueError, match="at least one run"):
        compare_runs([], [_run([1, 2, 3, 4])], "f1")


def _fold(model, held, mse, copy, data="d"):
    return {"model": model, "data": data, "index": list(range(len(mse))),
            "episodes": {"held_out": held, "test_every": None, "test_tail": None},
            "metrics": {"mse": mse}, "higher_is_better": {"mse": False},
            "baselines": {"copy_last": {"mse": copy}}}


def test_pool_folds_concatenates_the_folds_items_then_bootstraps_the_difference():
    f0 = _fold("wm_f0", ["a/0.npz", "b/0"], [1.0, 2.0, 3.0], [2.0, 2.0, 4.0])
    f1 = _fold("wm_f1", ["a/1", "b/1"], [5.0, 1.0], [4.0, 3.0])
    res = pool_folds([f0, f1], "mse", "copy_last", resamples=300, seed=2)
    d = np.array([-1.0, 0.0, -1.0, 1.0, -2.0])                      # model - copy-last, by hand
    assert res["items"] == 5 and res["diff"]["mean"] == pytest.approx(d.mean())
    assert res["model"] == pytest.approx(12 / 5) and res["baseline_mean"] == pytest.approx(3.0)
    assert res["model_better"] == pytest.approx(3 / 5)              # lower MSE on 3 items, 1 tie
    assert res["diff"]["ci95"] == pytest.approx(bootstrap_ci(torch.tensor(d), 300, 2))
    assert [f["items"] for f in res["folds"]] == [3, 2]
    assert res["folds"][1]["diff"] == pytest.approx(-0.5)


def test_pool_folds_refuses_folds_that_share_held_out_items():
    f0 = _fold("wm_f0", ["a/0.npz", "b/0"], [1.0, 2.0], [2.0, 2.0])
    with pytest.raises(ValueError, match="evaluated on the same episodes.*a/0"):
        pool_folds([f0, _fold("wm_f1", ["a/0", "b/1"], [1.0], [1.0])], "mse", "copy_last")
    with pytest.raises(ValueError, match="same model"):
        pool_folds([f0, _fold("wm_f0", ["a/1"], [1.0], [1.0])], "mse", "copy_last")
    with pytest.raises(ValueError, match="no baseline 'copy_last_tokens'"):
        pool_folds([f0], "mse", "copy_last_tokens")
    with pytest.raises(ValueError, match="no metric 'psnr'"):
        pool_folds([f0], "psnr", "copy_last")
    # the same held-out names in another data folder are other items
    res = pool_folds([f0, _fold("wm_g0", ["a/0", "b/0"], [3.0], [1.0], data="e")], "mse", "copy_last")
    assert res["items"] == 3


def test_pool_folds_refuses_text_folds_that_share_records_of_one_file():
    """Text-game / web evaluations record no episodes, only the record numbers (``index``) of
    their data file: folds on the same file must evaluate disjoint records."""
    def text_fold(model, index, data="data/text_game/test.jsonl"):
        return {"model": model, "data": data, "index": index, "metrics": {"accuracy": [1.0] * len(index)},
                "higher_is_better": {"accuracy": True},
                "baselines": {"no_change": {"accuracy": [0.0] * len(index)}}}
    with pytest.raises(ValueError, match="evaluated on the same records of .*test.jsonl .*record 2"):
        pool_folds([text_fold("a", [0, 1, 2]), text_fold("b", [2, 3])], "accuracy", "no_change")
    res = pool_folds([text_fold("a", [0, 1, 2]), text_fold("b", [3, 4])], "accuracy", "no_change")
    assert res["items"] == 5 and res["model_better"] == 1.0
    # the same record numbers of another file are other records
    res = pool_folds([text_fold("a", [0, 1]), text_fold("b", [0, 1], data="data/text_game/test_games.jsonl")],
                     "accuracy", "no_change")
    assert res["items"] == 4


def test_pool_folds_versus_pairs_two_recipes_item_by_item():
    a = [_fold("ft_f0", ["a/0"], [1.0, 2.0], [3.0, 3.0]), _fold("ft_f1", ["a/1"], [1.0], [2.0])]
    b = [_fold("sc_f0", ["a/0"], [2.0, 2.0], [3.0, 3.0]), _fold("sc_f1", ["a/1"], [4.0], [2.0])]
    res = pool_folds(a, "mse", "copy_last", resamples=300, seed=3, versus=b)
    d = np.array([-1.0, 0.0, -3.0])                                  # A - B per item, by hand
    assert res["versus"]["model"] == pytest.approx(8 / 3)
    assert res["versus"]["diff"]["mean"] == pytest.approx(d.mean())
    assert res["versus"]["diff"]["ci95"] == pytest.approx(bootstrap_ci(torch.tensor(d), 300, 3))
    assert [f["versus"] for f in res["folds"]] == pytest.approx([2.0, 4.0])
    with pytest.raises(ValueError, match="2 folds but 1 versus"):
        pool_folds(a, "mse", "copy_last", versus=b[:1])
    with pytest.raises(ValueError, match="versus fold 1 was evaluated on other items"):
        pool_folds(a, "mse", "copy_last", versus=[b[0], _fold("sc_f1", ["a/1"], [4.0, 1.0], [2.0, 2.0])])

