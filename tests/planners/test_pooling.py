"""Pooling `wm plan robot` runs: Fisher exact p against the hypergeometric tail, episode
bookkeeping (re-runs count once, matched scenes), and errors that name the file."""

import json
from math import comb

import pytest
from typer.testing import CliRunner

from planners.pooling import fisher_greater, pool_runs
from worldmodels.cli import app


def hypergeometric_tail(k1, n1, k2, n2):
    """P(X >= k1), X = successes of group 1 when k1 + k2 successes fall at random on n1 + n2."""
    k = k1 + k2
    return sum(comb(n1, x) * comb(n2, k - x) for x in range(k1, min(n1, k) + 1)) / comb(n1 + n2, k)


@pytest.mark.parametrize("counts", [(5, 80, 0, 80), (3, 10, 1, 12), (0, 7, 2, 9), (4, 4, 0, 4)])
def test_fisher_greater_is_the_hypergeometric_tail(counts):
    assert fisher_greater(*counts) == pytest.approx(hypergeometric_tail(*counts), rel=1e-9)


def test_fisher_greater_known_value_and_bad_counts():
    assert fisher_greater(5, 80, 0, 80) == pytest.approx(0.0293, abs=1e-4)   # C(80,5) / C(160,5)
    assert fisher_greater(0, 10, 0, 10) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="first group"):
        fisher_greater(11, 10, 0, 10)
    with pytest.raises(ValueError, match="second group"):
        fisher_greater(1, 10, 0, 0)


def write_run(root, model, seeds, successes, task="push", max_steps=48):
    d = root / f"{task}_cem_{model.replace('/', '_')}"
    d.mkdir(parents=True)
    eps = [{"seed": s, "success": s in successes} for s in seeds]
    (d / "summary.json").write_text(json.dumps({
        "task": task, "planner": "cem", "model": model, "per_episode": eps,
        "config": {"max_steps": max_steps, "action_repeat": 6, "image_size": 64}}))
    return d


def test_pool_counts_reruns_once_and_scores_the_baseline_on_the_same_episodes(tmp_path):
    write_run(tmp_path / "a", "random", range(0, 20), {3})
    write_run(tmp_path / "a", "oracle", range(0, 20), set(range(0, 20)) - {7})
    write_run(tmp_path / "a", "runs/wm", range(0, 10), {1, 2})
    write_run(tmp_path / "b", "runs/wm", range(5, 15), {12, 9})   # seeds 5-9 are re-runs: a's count
    rows = {r["model"]: r for r in pool_runs([tmp_path / "a", tmp_path / "b"])}
    wm = rows["runs/wm"]
    assert (wm["successes"], wm["episodes"], wm["duplicates_ignored"]) == (3, 15, 5)   # seeds 1, 2, 12
    assert wm["matched_episodes"] is True
    # random on seeds 0-14 only: 1 success (seed 3); oracle on the same seeds: 14 of 15
    assert wm["p_vs_baseline"] == pytest.approx(hypergeometric_tail(3, 15, 1, 15))
    assert wm["fraction_of_oracle"] == pytest.approx((3 / 15) / (14 / 15))
    assert rows["random"]["p_vs_baseline"] is None


def test_pool_old_summaries_use_the_defaults_of_settings_they_lack(tmp_path):
    d = write_run(tmp_path, "runs/wm", range(4), {1})
    s = json.loads((d / "summary.json").read_text())
    del s["config"]["action_repeat"]                      # written before action_repeat existed
    (d / "summary.json").write_text(json.dumps(s))
    write_run(tmp_path / "new", "runs/wm", range(4), {2}).joinpath("summary.json")
    (wm,) = pool_runs([tmp_path, tmp_path / "new"])       # action_repeat 0 vs 6: 8 distinct episodes
    assert (wm["episodes"], wm["successes"], wm["duplicates_ignored"]) == (8, 2, 0)


def test_pool_unmatched_episodes_and_settings_make_different_episodes(tmp_path):
    write_run(tmp_path, "random", range(0, 5), set())
    write_run(tmp_path / "long", "runs/wm", range(0, 5), {0}, max_steps=96)   # random never ran these
    (wm,) = [r for r in pool_runs([tmp_path, tmp_path / "long"]) if r["model"] == "runs/wm"]
    assert wm["matched_episodes"] is False and wm["episodes"] == 5
    assert wm["p_vs_baseline"] == pytest.approx(hypergeometric_tail(1, 5, 0, 5))


def test_pool_errors_name_the_file(tmp_path):
    write_run(tmp_path, "random", range(3), set())
    bad = write_run(tmp_path / "x", "runs/wm", range(3), set(), task="drawer")
    with pytest.raises(ValueError, match=r"drawer_cem_runs_wm.*pool one task at a time \(--task\)"):
        pool_runs([tmp_path, tmp_path / "x"])
    assert [r["model"] for r in pool_runs([tmp_path, tmp_path / "x"], task="drawer")] == ["runs/wm"]
    with pytest.raises(FileNotFoundError, match="no 'stack' runs"):
        pool_runs([tmp_path], task="stack")
    (bad / "summary.json").write_text(json.dumps({"task": "drawer", "model": "m", "per_episode": [{"seed": 0}]}))
    with pytest.raises(ValueError, match="missing config or per-episode seed/success"):
        pool_runs([bad])
    (tmp_path / "empty_root").mkdir()
    with pytest.raises(FileNotFoundError, match="no summary.json"):
        pool_runs([tmp_path / "empty_root"])


def test_cli_pool_prints_p_and_writes_json(tmp_path):
    write_run(tmp_path, "random", range(20), set())
    write_run(tmp_path, "runs/wm", range(20), {0, 4, 9})
    runner = CliRunner()
    r = runner.invoke(app, ["plan", "pool", str(tmp_path), "--out", str(tmp_path / "pool.json")])
    assert r.exit_code == 0, r.output
    p = hypergeometric_tail(3, 20, 0, 20)
    assert f"{p:.3g}" in r.output and "3 / 20" in r.output
    rows = json.loads((tmp_path / "pool.json").read_text())["rows"]
    assert {row["model"] for row in rows} == {"random", "runs/wm"}
    r = runner.invoke(app, ["plan", "pool", str(tmp_path / "missing")])
    assert r.exit_code == 2 and "not a summary.json" in r.output
