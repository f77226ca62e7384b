"""`wm data build web`: browser trajectories -> WMA WebArena-format files (system Chromium via
Playwright; skipped with the reason when either is missing)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("playwright", reason="Playwright missing: pip install -e '.[browser]'")
pytest.importorskip("flask", reason="Flask missing: pip install -e '.[web]'")

from worldmodels.envs.web.build import SPLIT_FILES, WebDataConfig, build_web_dataset  # noqa: E402
from worldmodels.tasks.web_data import load_webarena  # noqa: E402
from worldmodels.tasks.web_diff import apply_diff, gold_fields, same_nodes  # noqa: E402

FAMILIES = ["shop/cheapest", "admin/order_status", "forum/upvote"]


def _cfg(out, **kw) -> WebDataConfig:
    base = dict(out=str(out), families=FAMILIES, test_family="forum/upvote", episodes_per_family=2,
                max_steps=3, seed=3, test_every=2, workers=2, random_fraction=0.5)
    return WebDataConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from worldmodels.envs.web.browser import find_chromium

    try:
        find_chromium()
    except RuntimeError as e:
        pytest.skip(str(e))
    a, b = tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b")
    return build_web_dataset(_cfg(a), gold_fields, progress=False), a, b


def test_files_load_and_gold_diffs_replay(built):
    meta, out, _ = built
    total = 0
    for split, name in SPLIT_FILES.items():
        recs = load_webarena(out / name)
        assert len(recs) == meta["counts"][split] > 0
        for t in recs:
            assert "127.0.0.1" not in t.observation + t.next_observation + t.url + t.action
            assert t.gold is not None
            assert same_nodes(apply_diff(t.gold, t.observation), t.next_observation), t.source
        total += len(recs)
    assert total == meta["transitions"] == sum(v["transitions"] for v in meta["families"].values())
    assert 0.0 <= meta["unchanged_share"] <= 1.0


def test_records_carry_policy_and_value_fields(built):
    """agent / noise / seed / success / episode_success / episode_steps (issue #22), consistent
    within each browser episode: the last step's check is the episode's success."""
    meta, out, _ = built
    episodes: dict = {}
    for name in SPLIT_FILES.values():
        for r in json.loads((out / name).read_text()):
            episodes.setdefault((r["family"], r["episode"]), []).append(r)
    assert sum(len(v) for v in episodes.values()) == meta["transitions"]
    for recs in episodes.values():
        recs.sort(key=lambda r: r["step"])
        first = recs[0]
        assert first["agent"] in ("random", "scripted") and isinstance(first["success"], bool)
        assert first["noise"] == 0.0 if first["agent"] == "random" else first["noise"] in (0.0, 0.2, 0.5)
        assert all(r[k] == first[k] for r in recs for k in ("agent", "noise", "seed",
                                                            "episode_success", "episode_steps"))
        if meta["dedup"]["train_removed"] == 0:  # nothing dropped: the whole episode is here
            assert [r["step"] for r in recs] == list(range(first["episode_steps"]))
            assert recs[-1]["success"] == first["episode_success"]


def test_held_out_family_only_in_its_file(built):
    _, out, _ = built
    fam = {s: {t.raw["family"] for t in load_webarena(out / n)} for s, n in SPLIT_FILES.items()}
    assert fam["test_family"] == {"upvote"}
    assert "upvote" not in fam["train"] | fam["test"]
    assert fam["train"] == fam["test"] == {"cheapest", "order_status"}
    train_eps = {(r["family"], r["episode"]) for r in json.loads((out / "train.json").read_text())}
    assert all(ep % 2 == 1 for _, ep in train_eps)  # test_every=2: even episodes are test


def test_same_seed_identical_files(built):
    _, a, b = built
    build_web_dataset(_cfg(b, workers=1), gold_fields, progress=False)  # worker count must not matter
    for name in SPLIT_FILES.values():
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_web_task_accepts_the_files(built):
    from worldmodels.tasks.web import WebTask
    from worldmodels.tasks.web_config import WebTaskConfig

    _, out, _ = built
    task = WebTask.for_pretrain(WebTaskConfig(train=str(out / "train.json"), test=str(out / "test.json"),
                                              bpe_vocab_size=400))
    items = task.dataset("train")
    assert len(items) == len(load_webarena(out / "train.json"))


@pytest.mark.parametrize("field,value", [("families", ["shop/nope"]), ("test_family", "admin/price"),
                                         ("episodes_per_family", 0), ("expert_noise", [1.5]),
                                         ("workers", 0), ("test_every", 0), ("random_fraction", 2.0)])
def test_config_errors_name_the_field(field, value, tmp_path):
    with pytest.raises(ValueError, match=field):
        _cfg(tmp_path, **{field: value})


def test_cli_help_lists_flags():
    from typer.testing import CliRunner

    from worldmodels.commands.data import app

    res = CliRunner().invoke(app, ["build", "web", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    for flag in ("--config", "--set", "--episodes", "--families", "--test-family", "--max-steps",
                 "--workers", "--test-every", "--quiet", "--overwrite", "episodes_per_family"):
        assert flag in res.output, flag


def test_cli_missing_chromium_is_one_line_error(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from worldmodels.commands.data import app

    monkeypatch.setenv("WM_CHROMIUM", str(tmp_path / "no-such-chromium"))
    res = CliRunner().invoke(app, ["build", "web", "--out", str(tmp_path / "w"), "--quiet"])
    assert res.exit_code == 2
    assert "WM_CHROMIUM" in res.output and "Traceback" not in res.output
