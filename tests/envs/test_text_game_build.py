"""`wm data build text-game`: record schema against the real ByteSized32 sample, determinism,
splits (held-out records and games), changed shares, resume, the command."""

import functools
import gzip
import json
from pathlib import Path

import pytest

from worldmodels.config import ConfigError, load_config
from worldmodels.envs.text_game_data import (
    RECORD_KEYS,
    SPLIT_FILES,
    TextGameDataConfig,
    build_dataset,
    episode_plan,
    is_changed,
    play_episode,
    transition_key,
)
from worldmodels.envs.text_game_games import GAMES

RECIPE = Path(__file__).resolve().parents[2] / "data" / "recipes" / "text_game_tiny.yaml"


def small(out, **kw) -> TextGameDataConfig:
    return TextGameDataConfig(**{"out": str(out), "episodes_per_game": 6, "max_steps": 15, **kw})


def read(path) -> list[dict]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("tg") / "data"
    meta = build_dataset(small(out), progress=False)
    return out, meta, {k: read(out / f) for k, f in SPLIT_FILES.items()}


@functools.lru_cache(maxsize=1)
def _read_real(path: str) -> tuple:
    return tuple(read(path))


@pytest.fixture
def real(shared_data):
    return list(_read_real(str(shared_data / "bytesized32" / "test_dev.jsonl.gz")))


def _types(values) -> set[str]:
    return {type(v).__name__ for v in values}


def test_record_schema_matches_the_real_sample(built, real):
    """Same keys in the same order and the same value types at every level as the shared file."""
    _, _, splits = built
    ours = [r for recs in splits.values() for r in recs]
    assert list(real[0]) == ["current_state", "action_state", "tick_state", "current_score_state",
                             "next_score_state", "game", "state_id"] == list(RECORD_KEYS)

    def schema(records):
        states = [r[k] for r in records for k in ("current_state", "action_state", "tick_state")]
        objects = [o for s in states for o in s["objects"]]
        scores = [r[k] for r in records for k in ("current_score_state", "next_score_state")]
        return {
            "record": {tuple(r) for r in records},
            "record_types": {k: _types(r[k] for r in records) for k in ("game", "state_id")},
            "state": {tuple(s) for s in states},
            "state_types": {k: _types(s[k] for s in states) for k in states[0]},
            "object": {tuple(o) for o in objects},
            "object_types": {k: _types(o[k] for o in objects) for k in objects[0]},
            "contains_items": _types(n for o in objects for n in o["contains"]),
            "score": {tuple(s) for s in scores},
            "score_flags": {k: _types(s[k] for s in scores) for k in ("gameOver", "gameWon")},
            "property_values": _types(v for o in objects for v in o["properties"].values()),
            "score_values": _types(s["score"] for s in scores),
        }

    want, got = schema(real), schema(ours)
    for key in ("record", "record_types", "state", "state_types", "object", "object_types",
                "contains_items", "score", "score_flags"):
        assert got[key] == want[key], key
    assert got["property_values"] <= want["property_values"]   # ours: bool, int, str
    assert got["score_values"] <= want["score_values"]         # int (the real one also float)
    for r in ours[:50]:  # names carry the uuid; the room and the agent are objects, listed first
        objs = r["current_state"]["objects"]
        assert all(o["name"].endswith(f"(ID: {o['uuid']})") for o in objs)
        assert [o["uuid"] for o in objs[:2]] == [1, 0] and objs[1]["name"] == "agent (ID: 0)"


def test_new_objects_take_uuids_from_max_uuid_as_in_the_real_sample(built, real):
    def creations(records):
        for r in records:
            for a, b in (("current_state", "action_state"), ("action_state", "tick_state")):
                before, after = r[a], r[b]
                new = sorted({o["uuid"] for o in after["objects"]} - {o["uuid"] for o in before["objects"]})
                if new:
                    yield new, before["max_UUID"], after["max_UUID"]

    for records in (real, [r for recs in built[2].values() for r in recs]):
        found = list(creations(records))
        assert len(found) > 10
        assert all(new == list(range(lo, hi)) for new, lo, hi in found)


def test_changed_rule_reproduces_the_reference_count_on_the_real_sample(real):
    # reference/language.md: 994 of the 2,317 shared records are changed (exact equality)
    assert len(real) == 2317 and sum(is_changed(r) for r in real) == 994


def test_same_seed_same_bytes_other_seed_other_data(built, tmp_path):
    out, meta, _ = built
    again = tmp_path / "again"
    meta2 = build_dataset(small(again), progress=False)
    names = list(SPLIT_FILES.values()) + ["episodes.jsonl"] + [f"rules/{k}_rules.json" for k in
                                                               ("object", "action", "score")]
    for name in names:
        assert (out / name).read_bytes() == (again / name).read_bytes(), name
    assert {k: v for k, v in meta.items() if k != "build"} == {k: v for k, v in meta2.items() if k != "build"}
    other = build_dataset(small(tmp_path / "other", seed=1), progress=False)
    assert other["files"]["train.jsonl"]["sha256"] != meta["files"]["train.jsonl"]["sha256"]
    plan = episode_plan(small(out), "make-ice", 3)
    assert plan == episode_plan(small(out, episodes_per_game=50, games=["make-ice", "boil-water"],
                                      test_games=[]), "make-ice", 3)


def test_splits_hold_out_games_and_records(built):
    _, meta, splits = built
    assert {r["game"] for r in splits["test_games"]} == {"make-tea"}
    assert {r["game"] for r in splits["train"]} == {r["game"] for r in splits["test"]} \
        == set(GAMES) - {"make-tea"}
    assert meta["test_games"] == ["make-tea"] and "make-tea" not in meta["train_games"]
    train_keys = [transition_key(r) for r in splits["train"]]
    test_keys = [transition_key(r) for r in splits["test"]]
    assert len(set(train_keys)) == len(train_keys) and len(set(test_keys)) == len(test_keys)
    assert not set(train_keys) & set(test_keys)
    assert all(r["state_id"] // 1000 % 5 == 0 for r in splits["test"])
    assert all(r["state_id"] // 1000 % 5 != 0 for r in splits["train"])
    for name, recs in splits.items():  # meta counts what is in the files
        assert meta["files"][SPLIT_FILES[name]]["records"] == len(recs)
        assert meta["splits"][name]["changed"] == sum(is_changed(r) for r in recs)
    rules = {k: json.loads((built[0] / "rules" / f"{k}_rules.json").read_text()) for k in
             ("object", "action", "score")}
    for by_game in rules.values():
        assert set(by_game) == set(GAMES) and all(isinstance(t, str) and t for t in by_game.values())
    assert all(t.split("==========")[-1].strip().startswith("Object: World") for t in rules["object"].values())


def test_episode_records_chain_and_stop_at_game_over():
    cfg = small("unused", max_steps=40, invalid_action_rate=0.0)
    for game in GAMES:
        plan = {**episode_plan(cfg, game, 1), "policy": "expert", "noise": 0.0}
        recs, summary = play_episode(cfg, plan)
        assert summary["won"] and recs[-1]["next_score_state"]["gameOver"]
        assert not any(r["next_score_state"]["gameOver"] for r in recs[:-1])
        for a, b in zip(recs, recs[1:], strict=False):
            assert b["current_state"] == a["tick_state"] and b["state_id"] == a["state_id"] + 1
        assert recs[0]["current_state"]["lastAction"] == "" and recs[0]["state_id"] == 1000


def test_changed_share_follows_the_knobs(tmp_path):
    default = build_dataset(small(tmp_path / "a", episodes_per_game=10), progress=False)
    share = default["splits"]["train"]["changed_share"]
    assert 0.4 <= share <= 0.75, share
    # invalid actions and random play push the unchanged share to the real raw data's (> 85 %)
    idle = build_dataset(small(tmp_path / "b", episodes_per_game=10, max_steps=30, invalid_action_rate=0.85,
                               random_fraction=0.5), progress=False)
    assert idle["raw"]["changed_share"] < 0.25
    assert default["build"]["records_per_s"] > 0


def test_rerun_skips_a_finished_build_and_repairs_a_modified_one(built, tmp_path):
    out = tmp_path / "r"
    first = build_dataset(small(out), progress=False)
    again = build_dataset(small(out), progress=False)
    assert again["build"]["built"] == 0 and again["build"]["skipped"] == first["records_total"]
    good = (out / "test.jsonl").read_bytes()
    (out / "test.jsonl").write_bytes(good[: len(good) // 2])
    repaired = build_dataset(small(out), progress=False)
    assert repaired["build"]["built"] == first["records_total"] and (out / "test.jsonl").read_bytes() == good


def test_the_task_loader_reads_the_built_files(built):
    data = pytest.importorskip("worldmodels.tasks.text_game_data")
    out, _, splits = built
    for name, fname in SPLIT_FILES.items():
        ts = data.load_transitions(out / fname)
        assert len(ts) == len(splits[name])
        assert [t.changed for t in ts] == [is_changed(r) for r in splits[name]]


@pytest.mark.parametrize("override, match", [
    ("games=[boil-water, juggle]", "unknown text game 'juggle'; known games: boil-water"),
    ("games=[]", "games"),
    ("games=[boil-water, make-ice]", r"test_games \['make-tea'\] are not in games"),
    ("games=[make-tea]", "holds out every game"),
    ("episodes_per_game=0", "episodes_per_game"),
    ("max_steps=1000", "max_steps"),
    ("expert_noise=[1.5]", "expert_noise"),
    ("random_fraction=-0.1", "random_fraction"),
    ("invalid_action_rate=2", "invalid_action_rate"),
    ("test_every=0", "test_every"),
    ("seed=-1", "seed"),
])
def test_config_validation(override, match):
    with pytest.raises((ConfigError, ValueError), match=match):
        load_config(TextGameDataConfig, None, [override])


def test_recipe_loads():
    cfg = load_config(TextGameDataConfig, RECIPE)
    assert cfg.test_games == ["make-tea"] and set(cfg.games) == set(GAMES)


def test_x5_recipe_differs_from_the_tiny_one_only_in_episodes_and_out():
    """text_game_x5.yaml: the same games, split and seed as text_game_tiny.yaml, five times the
    episodes (the 2026-12-01 experiment's data)."""
    from dataclasses import asdict

    tiny, x5 = (asdict(load_config(TextGameDataConfig, RECIPE.with_name(n)))
                for n in ("text_game_tiny.yaml", "text_game_x5.yaml"))
    assert {k for k in tiny if tiny[k] != x5[k]} == {"episodes_per_game", "out"}
    assert x5["episodes_per_game"] == 5 * tiny["episodes_per_game"]


def test_command_builds_reruns_and_refuses_other_settings(tmp_path):
    from typer.testing import CliRunner

    from worldmodels.cli import app

    runner = CliRunner()
    out = tmp_path / "cli"
    args = ["data", "build", "text-game", "--out", str(out), "--episodes", "3", "--max-steps", "10", "--quiet"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "records (built in" in res.output and "held-out games ['make-tea']" in res.output
    meta = json.loads((out / "meta.json").read_text())
    assert meta["config"]["episodes_per_game"] == 3 and len(read(out / "episodes.jsonl")) == 3 * len(GAMES)
    res = runner.invoke(app, ["data", "build", "text-game", "--out", str(out), "--quiet"])
    assert res.exit_code == 0 and "already built, skipped" in res.output
    res = runner.invoke(app, ["data", "build", "text-game", "--out", str(out), "--seed", "1"])
    assert res.exit_code == 2 and "seed: recorded 0, requested 1" in res.output
    res = runner.invoke(app, ["data", "build", "text-game", "--out", str(out), "--episodes", "4", "--quiet"])
    assert res.exit_code == 0 and len(read(out / "episodes.jsonl")) == 4 * len(GAMES)
