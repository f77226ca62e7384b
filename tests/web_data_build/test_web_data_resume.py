"""`wm data build web` without a browser: run_parallel replaced by a fake that plays each job
through the real run_episode on a two-page fake environment. Resume, config checks, dedup
counts and the per-step record fields (issue #22)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

pytest.importorskip("flask", reason="Flask missing: pip install -e '.[web]'")

from worldmodels.envs.web import agents  # noqa: E402
from worldmodels.envs.web.build import SPLIT_FILES, WebDataConfig, build_web_dataset, episode_plan  # noqa: E402

PAGE_A = "Tab 0 (current): A\n\n[1] RootWebArea 'A' focused: True\n\t[2] button 'Go'"
PAGE_B = "Tab 0 (current): B\n\n[1] RootWebArea 'B' focused: True\n\t[3] StaticText 'Done'"


def annotate(obs, nxt, action):
    return {"new_items": "None", "deleted_items": "None", "updated_items": "None",
            "next_state_tao": ""}, obs == nxt


class FakeEnv:
    """Page A; ``click [2]`` goes to page B, which solves the task; other actions do nothing."""

    def reset(self, site, seed, family):
        self.task, self.obs = SimpleNamespace(objective=f"{site}/{family}"), PAGE_A
        self.page = SimpleNamespace(url="http://127.0.0.1:9/")
        return self.obs

    def step(self, action):
        if action == "click [2]":
            self.obs = PAGE_B
        return self.obs, {"valid": True, "error": None, "done": action.startswith("stop")}

    def success(self):
        return self.obs == PAGE_B


class Scripted:
    kind = "scripted"

    def __init__(self, noise):
        self.noise = noise

    def act(self, obs, task, history):
        return "stop []" if obs == PAGE_B else "click [2]"


class Random:
    kind, noise = "random", 0.0

    def act(self, obs, task, history):
        return "scroll [down]"


@pytest.fixture
def played(monkeypatch):
    """The jobs each fake run_parallel call received; ``crash_after`` simulates a killed run."""
    calls, state = [], {"crash_after": None}

    def fake_run_parallel(jobs, workers=2, chromium=None, on_result=None):
        calls.append(list(jobs))
        out = []
        for k, job in enumerate(jobs):
            if state["crash_after"] is not None and k == state["crash_after"]:
                raise KeyboardInterrupt
            job = dict(job)
            kind = job.pop("agent")
            agent = Random() if kind == "random" else Scripted(float(kind))
            out.append(agent_episode := agents.run_episode(FakeEnv(), agent, **job))
            on_result(k, agent_episode)
        return out

    monkeypatch.setattr(agents, "run_parallel", fake_run_parallel)
    return SimpleNamespace(calls=calls, state=state)


def _cfg(out, **kw):
    base = dict(out=str(out), families=["shop/remove", "forum/new_thread"], test_family="forum/new_thread",
                episodes_per_family=5, max_steps=3, seed=1, test_every=2, random_fraction=0.0,
                expert_noise=[0.0])
    return WebDataConfig(**{**base, **kw})


def _build(cfg):
    return build_web_dataset(cfg, annotate, progress=False, chromium="unused")


def test_dedup_counts_by_hand(tmp_path, played):
    meta = _build(_cfg(tmp_path))
    # every scripted episode is the same two transitions: (A, click [2], B), (B, stop [], B).
    # shop/remove: episodes 1, 3 train (4 records, 2 distinct), 0, 2, 4 test (6, all in train);
    # forum/new_thread: 5 episodes held out (10 records, all in train, not removed).
    assert meta["counts"] == {"train": 2, "test": 6, "test_family": 10}
    assert meta["dedup"]["train_removed"] == 2
    assert meta["dedup"]["test_overlap"] == 6 and meta["dedup"]["test_family_overlap"] == 10
    assert meta["families"]["shop/remove"]["train_duplicates_removed"] == 2
    assert meta["transitions"] == 18 == sum(f["transitions"] for f in meta["families"].values())
    assert meta["steps"] == 20
    train = json.loads((tmp_path / "train.json").read_text())
    assert [(r["episode"], r["step"]) for r in train] == [(1, 0), (1, 1)]  # the first kept


def test_records_carry_agent_noise_success_and_episode_fields(tmp_path, played):
    _build(_cfg(tmp_path, expert_noise=[0.3]))
    recs = json.loads((tmp_path / "test.json").read_text())
    for r in recs:
        plan = episode_plan(_cfg(tmp_path, expert_noise=[0.3]), "shop/remove", r["episode"])
        assert r["seed"] == plan["seed"] and r["agent"] == "scripted" and r["noise"] == 0.3
        assert r["success"] == (r["step"] == 1 or r["next_state_acctree"] == PAGE_B)
        assert r["episode_success"] and r["episode_steps"] == 2
    _build(_cfg(tmp_path / "r", random_fraction=1.0))
    recs = json.loads((tmp_path / "r" / "test.json").read_text())
    assert recs and all(r["agent"] == "random" and r["noise"] == 0.0 and not r["success"]
                        and not r["episode_success"] and r["episode_steps"] == 3 for r in recs)
    # an episode that never stopped: its last step's check is the episode's
    last = [r for r in recs if r["step"] == r["episode_steps"] - 1]
    assert last and all(r["success"] == r["episode_success"] for r in last)


def test_resume_plays_only_missing_episodes_and_gives_the_same_files(tmp_path, played):
    fresh = tmp_path / "fresh"
    _build(_cfg(fresh))
    played.state["crash_after"] = 3
    with pytest.raises(KeyboardInterrupt):
        _build(_cfg(tmp_path / "r"))
    cached = sorted(p.relative_to(tmp_path / "r" / ".episodes").as_posix()
                    for p in (tmp_path / "r" / ".episodes").rglob("*.json"))
    assert cached == ["config.json", "shop__remove/0.json", "shop__remove/1.json", "shop__remove/2.json"]
    played.state["crash_after"] = None
    meta = _build(_cfg(tmp_path / "r", workers=1))  # workers do not change an episode
    resumed = played.calls[-1]
    assert len(resumed) == 7  # 10 episodes, 3 cached
    assert resumed[0] == episode_plan(_cfg(tmp_path), "shop/remove", 3)
    assert meta["build"]["this_run"]["episodes_cached"] == 3 and meta["build"]["this_run"]["episodes_run"] == 7
    for name in SPLIT_FILES.values():
        assert (fresh / name).read_bytes() == (tmp_path / "r" / name).read_bytes(), name
    again = _build(_cfg(tmp_path / "r"))  # a third run plays nothing, keeps the timing
    assert played.calls[-1] is resumed and len(played.calls) == 3
    assert again["build"]["this_run"]["episodes_run"] == 0
    assert again["build"]["runs"] == meta["build"]["runs"] and len(again["build"]["runs"]) == 1
    assert again["build"]["steps_run"] == 14  # the 7 resumed episodes, 2 steps each


def test_other_config_in_same_out_is_an_error_unless_overwrite(tmp_path, played):
    _build(_cfg(tmp_path))
    with pytest.raises(RuntimeError, match=r"episodes_per_family: 5 -> 6.*--overwrite"):
        _build(_cfg(tmp_path, episodes_per_family=6))
    meta = _build(_cfg(tmp_path, episodes_per_family=6, overwrite=True))
    assert len(played.calls[-1]) == 12 and meta["counts"]["test_family"] == 12
    stamp = json.loads((tmp_path / ".episodes" / "config.json").read_text())
    assert stamp["episodes_per_family"] == 6 and "out" not in stamp and "workers" not in stamp
