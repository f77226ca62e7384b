"""Build a text-game dataset: GPT-simulator records from our engine (``wm data build text-game``).

    wm data build text-game --out data/text_game --episodes 40
    wm data build text-game --config data/recipes/text_game_tiny.yaml

Every game in ``games`` plays ``episodes_per_game`` episodes (at most ``max_steps`` steps, ending
at game over); episode ``i`` of game ``g`` draws its policy, noise and world from
``SeedSequence([seed, crc32(g), i])`` only. Each step is one record in the GPT-simulator format
(``../shared/reference/language.md`` §3) with the keys, in this order, ``current_state,
action_state, tick_state, current_score_state, next_score_state, game, state_id``, where
``state_id = 1000 * episode + step``.

Files written to ``out`` (all through ``worldmodels.atomic``; the same config gives
byte-identical ``*.jsonl`` and ``rules/``; only meta.json's ``build`` timings differ):

- ``train.jsonl``: records of the games not held out, from episodes ``i % test_every != 0``;
- ``test.jsonl``: held-out *records*: the other episodes of those games;
- ``test_games.jsonl``: held-out *games* (``test_games``): all their records, none in train;
- ``rules/{object,action,score}_rules.json``: ``{game: text}`` as in the shared ByteSized32 rules;
- ``episodes.jsonl``: one line per episode (game, episode, policy, noise, steps, won, lost);
- ``meta.json``: counts, split, games, share of changed records per split and game, state sizes;
- ``config.yaml``: the settings (a rerun with them skips a finished, unmodified build).

With ``dedupe`` a record whose (game, objects, score, max_UUID, action) already occurred is
dropped: repeats within a split, and test records that also occur in train (the engine is
deterministic, so such a record is the same transition). *Changed* means the next state
(``tick_state`` objects, ``contains`` compared sorted, and the next score) differs from the current
one: the rule the task's accuracy split uses.
"""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from worldmodels.atomic import atomic_write
from worldmodels.envs.text_game_games import GAMES, POLICIES, check_game, choose_action

META_VERSION = 1
SPLIT_FILES = {"train": "train.jsonl", "test": "test.jsonl", "test_games": "test_games.jsonl"}
RECORD_KEYS = ("current_state", "action_state", "tick_state", "current_score_state", "next_score_state",
               "game", "state_id")
STEP_STRIDE = 1000  # state_id = STEP_STRIDE * episode + step


@dataclass
class TextGameDataConfig:
    """Config of ``wm data build text-game``.

    Attributes:
        out: output folder (created).
        games: games that play (``worldmodels.envs.text_game_games.GAMES``); default all.
        test_games: games held out entirely: their records go to test_games.jsonl only.
        episodes_per_game: episodes each game plays.
        max_steps: steps per episode at most (an episode also ends at game over).
        seed: base seed; episode i of game g is seeded by (seed, crc32 of g's name, i).
        expert_noise: per-episode expert noise levels, drawn uniformly: the probability that a
            step takes a uniformly drawn valid action instead of the expert's.
        random_fraction: probability that an episode uses the random valid-action policy.
        invalid_action_rate: probability that a step takes a possible action that fails (its
            transition changes only by the tick), as players of the real games often do. With
            the defaults ~43 % of the records are unchanged (the shared ByteSized32 test sample:
            57 %, balanced per verb; the real raw train data: over 85 %, which
            invalid_action_rate 0.85 with random_fraction 0.5 reaches).
        test_every: episodes ``i % test_every == 0`` of the other games are test records.
        dedupe: drop repeated transitions within a split and test transitions seen in train.
    """

    out: str = "data/text_game"
    games: list[str] = field(default_factory=lambda: list(GAMES))
    test_games: list[str] = field(default_factory=lambda: ["make-tea"])
    episodes_per_game: int = 40
    max_steps: int = 30
    seed: int = 0
    expert_noise: list[float] = field(default_factory=lambda: [0.0, 0.2, 0.5])
    random_fraction: float = 0.3
    invalid_action_rate: float = 0.3
    test_every: int = 5
    dedupe: bool = True

    def __post_init__(self) -> None:
        if not self.games:
            raise ValueError("games must name at least one game")
        for g in list(self.games) + list(self.test_games):
            check_game(g)
        if len(set(self.games)) != len(self.games):
            raise ValueError(f"games lists a game twice: {self.games}")
        stray = [g for g in self.test_games if g not in self.games]
        if stray:
            raise ValueError(f"test_games {stray} are not in games {self.games}")
        if not set(self.games) - set(self.test_games):
            raise ValueError("test_games holds out every game: no game is left for train")
        if self.episodes_per_game < 1:
            raise ValueError(f"episodes_per_game must be >= 1, got {self.episodes_per_game}")
        if not 1 <= self.max_steps < STEP_STRIDE:
            raise ValueError(f"max_steps must be in [1, {STEP_STRIDE - 1}], got {self.max_steps}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0 (SeedSequence takes non-negative integers), got {self.seed}")
        if not self.expert_noise or not all(0.0 <= n <= 1.0 for n in self.expert_noise):
            raise ValueError(f"expert_noise must be a non-empty list of probabilities in [0,1], "
                             f"got {self.expert_noise}")
        for name in ("random_fraction", "invalid_action_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0,1], got {getattr(self, name)}")
        if self.test_every < 1:
            raise ValueError(f"test_every must be >= 1, got {self.test_every}")


def episode_plan(cfg: TextGameDataConfig, game: str, index: int) -> dict:
    """Policy, noise and seeds of episode ``index`` of ``game`` (a pure function of them)."""
    world_ss, policy_ss = np.random.SeedSequence([cfg.seed, zlib.crc32(game.encode()), index]).spawn(2)
    choice = np.random.default_rng(policy_ss)
    if choice.random() < cfg.random_fraction:
        policy, noise = "random", 0.0
    else:
        policy, noise = "expert", float(cfg.expert_noise[choice.integers(len(cfg.expert_noise))])
    assert policy in POLICIES
    return {"game": game, "episode": index, "policy": policy, "noise": noise,
            "world_seed": int(world_ss.generate_state(1)[0]),
            "policy_seed": int(policy_ss.generate_state(1)[0])}


def play_episode(cfg: TextGameDataConfig, plan: dict) -> tuple[list[dict], dict]:
    """The records of one planned episode and its summary line."""
    game = GAMES[plan["game"]]
    world = game.new_world(np.random.default_rng(plan["world_seed"]))
    rng = np.random.default_rng(plan["policy_seed"])
    records, last = [], world.score_state()
    for step in range(cfg.max_steps):
        action = choose_action(game, world, rng, plan["policy"], plan["noise"], cfg.invalid_action_rate)
        rec = world.step(action)
        rec["game"], rec["state_id"] = game.name, STEP_STRIDE * plan["episode"] + step
        records.append(rec)
        last = rec["next_score_state"]
        if last["gameOver"]:
            break
    summary = {k: plan[k] for k in ("game", "episode", "policy", "noise")}
    summary |= {"steps": len(records), "won": last["gameWon"], "lost": last["gameOver"] and not last["gameWon"]}
    return records, summary


def _objects_key(objects: list[dict]) -> list:
    return sorted(((o["uuid"], o["name"], o["type"], o["properties"], sorted(o["contains"]))
                   for o in objects), key=lambda x: x[0])


def is_changed(rec: dict) -> bool:
    """Whether the next state (tick_state + next score) differs from the current one, objects
    compared by uuid with ``contains`` sorted (the task's changed/unchanged rule)."""
    return (_objects_key(rec["current_state"]["objects"]) != _objects_key(rec["tick_state"]["objects"])
            or rec["current_score_state"] != rec["next_score_state"])


def transition_key(rec: dict) -> str:
    """What determines a transition: game, objects, score, max_UUID and the action."""
    cur = rec["current_state"]
    blob = json.dumps([rec["game"], cur["objects"], rec["current_score_state"], cur["max_UUID"],
                       rec["tick_state"]["lastAction"]], sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()


def split_records(cfg: TextGameDataConfig, by_episode: list[tuple[dict, list[dict]]]) -> dict[str, list[dict]]:
    """``{train, test, test_games}`` record lists (generation order), deduplicated if asked."""
    splits: dict[str, list[dict]] = {k: [] for k in SPLIT_FILES}
    for plan, recs in by_episode:
        name = ("test_games" if plan["game"] in cfg.test_games else
                "test" if plan["episode"] % cfg.test_every == 0 else "train")
        splits[name] += recs
    if not cfg.dedupe:
        return splits
    seen_train: set[str] = set()
    for name in ("train", "test", "test_games"):
        seen = set(seen_train) if name == "test" else set()
        kept = []
        for rec in splits[name]:
            key = transition_key(rec)
            if key not in seen:
                seen.add(key)
                kept.append(rec)
        splits[name] = kept
        if name == "train":
            seen_train = seen
    return splits


def _jsonl_bytes(records: list[dict]) -> bytes:
    return "".join(json.dumps({k: r[k] for k in RECORD_KEYS}) + "\n" for r in records).encode()


def _file_sha(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def already_built(cfg: TextGameDataConfig) -> dict | None:
    """meta.json of a finished build of exactly ``cfg`` whose files are unmodified, else None."""
    from worldmodels.config import to_dict

    out = Path(cfg.out)
    try:
        meta = json.loads((out / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    mine = {k: v for k, v in to_dict(cfg).items() if k != "out"}
    if meta.get("version") != META_VERSION or meta.get("config") != mine:
        return None
    files = meta.get("files", {})
    return meta if files and all(_file_sha(out / f) == v["sha256"] for f, v in files.items()) else None


def build_dataset(cfg: TextGameDataConfig, progress: bool = True) -> dict:
    """Build the dataset described by ``cfg`` (or find it already built); returns its meta."""
    from tqdm import tqdm

    from worldmodels.config import save_config, to_dict

    out = Path(cfg.out)
    done = already_built(cfg)
    if done is not None:
        done["build"] = {**done["build"], "built": 0, "skipped": done["records_total"]}
        return done
    t0 = time.perf_counter()
    by_episode, summaries = [], []
    plans = [episode_plan(cfg, g, i) for g in cfg.games for i in range(cfg.episodes_per_game)]
    for plan in tqdm(plans, desc=f"text-game episodes -> {out}", unit="ep", disable=not progress):
        recs, summary = play_episode(cfg, plan)
        by_episode.append((plan, recs))
        summaries.append(summary)
    raw = [r for _, recs in by_episode for r in recs]
    splits = split_records(cfg, by_episode)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out)
    files = {}
    for name, fname in SPLIT_FILES.items():
        data = _jsonl_bytes(splits[name])
        atomic_write(out / fname, lambda f, d=data: f.write(d))
        files[fname] = {"records": len(splits[name]), "sha256": hashlib.sha256(data).hexdigest()}
    for kind in ("object", "action", "score"):
        rules = {g: GAMES[g].rules()[kind] for g in cfg.games}
        atomic_write(out / "rules" / f"{kind}_rules.json", lambda f, r=rules: json.dump(r, f, indent=4), text=True)
    atomic_write(out / "episodes.jsonl", lambda f: f.writelines(json.dumps(s) + "\n" for s in summaries),
                 text=True)
    seconds = time.perf_counter() - t0
    config = {k: v for k, v in to_dict(cfg).items() if k != "out"}
    meta = make_meta(cfg, config, raw, splits, summaries, files, seconds)
    atomic_write(out / "meta.json", lambda f: json.dump(meta, f, indent=2), text=True)
    return meta


def split_counts(records: list[dict], changed: dict[int, bool] | None = None) -> dict:
    """Records, changed, unchanged and the changed share, overall and per game (``changed``:
    ``is_changed`` by ``id(record)``, computed here when absent)."""
    by_game: dict[str, Counter] = {}
    for r in records:
        flag = changed[id(r)] if changed is not None else is_changed(r)
        by_game.setdefault(r["game"], Counter())[flag] += 1
    total = Counter()
    for c in by_game.values():
        total.update(c)

    def row(c: Counter) -> dict:
        n = c[True] + c[False]
        return {"records": n, "changed": c[True], "unchanged": c[False],
                "changed_share": round(c[True] / n, 4) if n else None}

    return {**row(total), "by_game": {g: row(c) for g, c in sorted(by_game.items())}}


def _verb(rec: dict) -> str:
    action = rec["tick_state"]["lastAction"]
    return "turn" if action.startswith("turn ") else action.split(" ", 1)[0]


def _sizes(records: list[dict]) -> dict:
    """Objects per current state and characters of its compact JSON (objects + score)."""
    if not records:
        return {}
    n_obj = np.array([len(r["current_state"]["objects"]) for r in records])
    chars = np.array([len(json.dumps([r["current_state"]["objects"], r["current_score_state"]],
                                     separators=(",", ":"))) for r in records])
    return {"objects_mean": round(float(n_obj.mean()), 2), "objects_max": int(n_obj.max()),
            "state_chars_median": int(np.median(chars)), "state_chars_max": int(chars.max())}


def make_meta(cfg: TextGameDataConfig, config: dict, raw: list[dict], splits: dict[str, list[dict]],
              summaries: list[dict], files: dict, seconds: float) -> dict:
    """The meta.json of a build: settings, files, counts, changed shares, episode outcomes."""
    episodes: dict[str, dict] = {}
    for s in summaries:
        row = episodes.setdefault(s["game"], {}).setdefault(
            s["policy"], {"episodes": 0, "won": 0, "lost": 0, "steps": 0})
        row["episodes"] += 1
        row["won"] += s["won"]
        row["lost"] += s["lost"]
        row["steps"] += s["steps"]
    for by_policy in episodes.values():
        for row in by_policy.values():
            row["win_rate"] = round(row["won"] / row["episodes"], 3)
            row["mean_steps"] = round(row.pop("steps") / row["episodes"], 2)
    total = sum(len(v) for v in splits.values())
    changed = {id(r): is_changed(r) for r in raw}
    return {
        "version": META_VERSION,
        "format": "GPT-simulator (ByteSized32-State-Prediction) records, reference/language.md section 3",
        "env": "worldmodels.envs.text_game",
        "config": config,
        "games": list(cfg.games),
        "train_games": [g for g in cfg.games if g not in cfg.test_games],
        "test_games": list(cfg.test_games),
        "split": (f"test_games.jsonl: every record of {list(cfg.test_games)}; test.jsonl: episodes "
                  f"i % {cfg.test_every} == 0 of the other games; train.jsonl: the rest"
                  + ("; repeated transitions and test transitions seen in train dropped" if cfg.dedupe else "")),
        "changed_rule": "tick_state objects (contains sorted) or next score differ from the current ones",
        "files": files,
        "rules": "rules/{object,action,score}_rules.json",
        "records_total": total,
        "raw": {k: v for k, v in split_counts(raw, changed).items() if k != "by_game"},
        "splits": {name: split_counts(recs, changed) for name, recs in splits.items()},
        "verbs": {name: dict(sorted(Counter(_verb(r) for r in recs).items())) for name, recs in splits.items()},
        "state_size": {name: _sizes(recs) for name, recs in splits.items()},
        "episodes": episodes,
        "build": {"built": total, "skipped": 0, "seconds": round(seconds, 3),
                  "records_per_s": round(len(raw) / seconds, 1) if seconds > 0 else None},
    }
