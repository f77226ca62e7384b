"""`wm data`: build the robot dataset and inspect any episode folder.

    wm data build robot --out data/robot --episodes 200          # 64x64, all cores
    wm data build robot --config data/recipes/robot_tiny.yaml --set workers=2
    wm data build text-game --config data/recipes/text_game_tiny.yaml   # GPT-simulator records
    wm data build web --config data/recipes/web_tiny.yaml               # browser transitions
    wm data info data/robot
    wm data info ../shared/data/robot/metaworld --layout metaworld
    wm data info some/folder --image-key observation --channels-first --frame-stack 3
    wm data info ../shared/data/robot/metaworld --layout metaworld --held-out door-lock --size 32

Flags map onto ``RobotDataConfig`` fields (defaults <- --config YAML <- flags <- --set).
A build is resumable: rerunning the same command skips finished episodes. A rerun into a folder
that has a ``config.yaml`` continues with those recorded settings (``--out DIR`` alone is
enough); a flag, ``--set`` or ``--config`` value that differs from them is an error naming the
field and both values, except ``RESUME_MAY_CHANGE`` (episode count, split rule, workers).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from worldmodels.commands._episodes import episode_options

app = typer.Typer(help="build and inspect datasets (robot episodes from MuJoCo, other layouts)",
                  no_args_is_help=True)
build_app = typer.Typer(help="build a dataset", no_args_is_help=True)

# What a rerun into a built folder may change: how many episodes it holds, the split rule in
# meta.json and the worker count -- never what an episode is (the other RobotDataConfig fields).
RESUME_MAY_CHANGE = ("episodes", "test_every", "workers")
app.add_typer(build_app, name="build")


def _fail(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code=2)


def _split_list(text: str | None, cast=str) -> list | None:
    if text is None:
        return None
    try:
        return [cast(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError:
        _fail(f"could not parse list {text!r}")


@build_app.command("robot")
def build_robot(
    out: str | None = typer.Option(None, help="output folder (default data/robot)"),
    episodes: int | None = typer.Option(None, help="episodes in the folder when done (default 200)"),
    tasks: str | None = typer.Option(
        None, help="comma-separated tasks cycled over episodes (default push,drawer_open,drawer_close)"),
    image_size: int | None = typer.Option(None, help="frame size in pixels, 8..256 (default 64)"),
    episode_len: int | None = typer.Option(None, help="frames per episode (default 50)"),
    seed: int | None = typer.Option(None, help="base seed (default 0)"),
    noise: str | None = typer.Option(
        None, help="comma-separated expert noise levels drawn per episode (default 0,0.5,1,2)"),
    random_fraction: float | None = typer.Option(
        None, help="fraction of random-policy episodes (default 0.2)"),
    test_every: int | None = typer.Option(None, help="file i is test iff i % N == 0 (default 10)"),
    workers: int | None = typer.Option(None, help="processes; 0 = all cores (default 0)"),
    config: Path | None = typer.Option(None, "--config", help="recipe YAML (RobotDataConfig)"),
    set_: list[str] = typer.Option([], "--set", help="override a field: key=value (repeatable)"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
) -> None:
    """Roll out scripted experts and random policies in the MuJoCo robot world.

    Rerunning into a folder continues its build with the settings recorded in its config.yaml
    (--out DIR alone is enough); other values given must equal them, except --episodes,
    --test-every and --workers."""
    from worldmodels.commands._common import resumed_config
    from worldmodels.config import (
        CONFIG_FILENAME,
        ConfigError,
        load_config,
        parse_overrides,
        read_config_file,
        requested_values,
    )
    from worldmodels.envs.robot_data import RobotDataConfig, build_dataset

    flags = {
        "out": out, "episodes": episodes, "tasks": _split_list(tasks), "image_size": image_size,
        "episode_len": episode_len, "seed": seed, "expert_noise": _split_list(noise, float),
        "random_fraction": random_fraction, "test_every": test_every, "workers": workers,
    }
    overrides = [f"{k}={json.dumps(v)}" for k, v in flags.items() if v is not None] + list(set_)
    try:
        layers = (read_config_file(config) if config else None, parse_overrides(overrides))
        run_dir = requested_values(*layers).get("out") or RobotDataConfig.out
        if (Path(run_dir) / CONFIG_FILENAME).is_file():  # a rerun continues the folder's build
            cfg = resumed_config(RobotDataConfig, run_dir, *layers, may_change=RESUME_MAY_CHANGE)
        else:
            cfg = load_config(RobotDataConfig, config, overrides)
    except (ConfigError, ValueError) as e:
        _fail(str(e))
    try:
        meta = build_dataset(cfg, progress=not quiet)
    except ValueError as e:
        _fail(str(e))
    b = meta["build"]
    typer.echo(
        f"{cfg.out}: {meta['episodes']} episodes ({b['built']} built, {b['skipped']} already "
        f"there) in {b['seconds']:.1f}s, {b['frames_per_s'] or 0:.0f} frames/s; "
        f"success rate {meta['success_rate']:.2f} "
        + json.dumps({k: round(v, 2) for k, v in meta["success_rate_by_task"].items()})
    )


def _text_game_epilog() -> str:
    from worldmodels.commands._common import config_epilog
    from worldmodels.envs.text_game_data import TextGameDataConfig

    return config_epilog(TextGameDataConfig)


# What a rerun into a built text-game folder may change: how many episodes and games, and the
# split -- never how an episode plays (seed, policies, noise, steps). The files are rewritten whole.
TEXT_GAME_MAY_CHANGE = ("episodes_per_game", "games", "test_games", "test_every", "dedupe")


@build_app.command("text-game", epilog=_text_game_epilog())
def build_text_game(
    out: str | None = typer.Option(None, help="output folder (default data/text_game)"),
    episodes: int | None = typer.Option(None, help="episodes per game (default 40)"),
    games: str | None = typer.Option(None, help="comma-separated games (default all six)"),
    test_games: str | None = typer.Option(
        None, help="comma-separated held-out games, written only to test_games.jsonl (default make-tea)"),
    max_steps: int | None = typer.Option(None, help="steps per episode at most (default 30)"),
    seed: int | None = typer.Option(None, help="base seed (default 0)"),
    noise: str | None = typer.Option(
        None, help="comma-separated expert noise levels drawn per episode (default 0,0.2,0.5)"),
    random_fraction: float | None = typer.Option(
        None, help="fraction of random valid-action episodes (default 0.3)"),
    invalid_rate: float | None = typer.Option(
        None, help="probability that a step takes a failing action (default 0.3)"),
    test_every: int | None = typer.Option(None, help="episode i is test iff i % N == 0 (default 5)"),
    config: Path | None = typer.Option(None, "--config", help="recipe YAML (TextGameDataConfig)"),
    set_: list[str] = typer.Option([], "--set", help="override a field: key=value (repeatable)"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
) -> None:
    """Play the built-in text games (scripted experts with noise, random agents) and write
    GPT-simulator records: train.jsonl, test.jsonl (held-out episodes), test_games.jsonl
    (held-out games), rules/, episodes.jsonl and meta.json.

    The same settings give byte-identical record files; a rerun into a finished folder with
    them skips the build. Rerunning into a folder continues with the settings recorded in its
    config.yaml (--out DIR alone is enough); other values given must equal them, except
    --episodes, --games, --test-games, --test-every and dedupe (the files are rewritten)."""
    from worldmodels.commands._common import resumed_config
    from worldmodels.config import (
        CONFIG_FILENAME,
        ConfigError,
        load_config,
        parse_overrides,
        read_config_file,
        requested_values,
    )
    from worldmodels.envs.text_game_data import TextGameDataConfig, build_dataset

    flags = {
        "out": out, "episodes_per_game": episodes, "games": _split_list(games),
        "test_games": _split_list(test_games), "max_steps": max_steps, "seed": seed,
        "expert_noise": _split_list(noise, float), "random_fraction": random_fraction,
        "invalid_action_rate": invalid_rate, "test_every": test_every,
    }
    overrides = [f"{k}={json.dumps(v)}" for k, v in flags.items() if v is not None] + list(set_)
    try:
        layers = (read_config_file(config) if config else None, parse_overrides(overrides))
        run_dir = requested_values(*layers).get("out") or TextGameDataConfig.out
        if (Path(run_dir) / CONFIG_FILENAME).is_file():  # a rerun continues the folder's build
            cfg = resumed_config(TextGameDataConfig, run_dir, *layers, may_change=TEXT_GAME_MAY_CHANGE)
        else:
            cfg = load_config(TextGameDataConfig, config, overrides)
    except (ConfigError, ValueError) as e:
        _fail(str(e))
    meta = build_dataset(cfg, progress=not quiet)
    b, s = meta["build"], meta["splits"]
    shares = ", ".join(f"{k} {v['records']} ({v['changed_share'] or 0:.0%} changed)" for k, v in s.items())
    status = "already built, skipped" if b["built"] == 0 else (
        f"built in {b['seconds']:.1f}s, {b['records_per_s'] or 0:.0f} records/s")
    typer.echo(f"{cfg.out}: {meta['records_total']} records ({status}): {shares}; held-out games "
               f"{meta['test_games']}")


def _web_epilog() -> str:
    from worldmodels.commands._common import config_epilog
    from worldmodels.envs.web.build import WebDataConfig

    return config_epilog(WebDataConfig)


@build_app.command("web", epilog=_web_epilog())
def build_web(
    out: str | None = typer.Option(None, help="output folder (default data/web)"),
    episodes: int | None = typer.Option(None, help="episodes per family (default 20)"),
    families: str | None = typer.Option(
        None, help="comma-separated site/family names (default the scripted ones)"),
    test_family: str | None = typer.Option(
        None, help="held-out site/family, written only to test_family.json (default none)"),
    max_steps: int | None = typer.Option(None, help="steps per episode at most (default 15)"),
    seed: int | None = typer.Option(None, help="base seed (default 0)"),
    noise: str | None = typer.Option(
        None, help="comma-separated expert noise levels drawn per episode (default 0,0.2,0.5)"),
    random_fraction: float | None = typer.Option(None, help="fraction of random-agent episodes (default 0.2)"),
    workers: int | None = typer.Option(None, help="browser threads, each its own Chromium (default 2)"),
    test_every: int | None = typer.Option(None, help="episode i is test iff i % N == 0 (default 5)"),
    config: Path | None = typer.Option(None, "--config", help="recipe YAML (WebDataConfig)"),
    set_: list[str] = typer.Option([], "--set", help="override a field: key=value (repeatable)"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="replay every episode, discarding those cached in --out "
        "(default: resume the same config, refuse a different one)"),
) -> None:
    """Browse the local sites (scripted agents with noise, random agents) with Chromium and
    write WMA WebArena-format transitions: train.json, test.json, test_family.json, meta.json.
    The same settings give identical record files. Needs Playwright and a system Chromium."""
    from worldmodels.config import ConfigError, load_config
    from worldmodels.envs.web.build import WebDataConfig, build_web_dataset
    from worldmodels.tasks.web_diff import gold_fields

    flags = {
        "out": out, "episodes_per_family": episodes, "families": _split_list(families),
        "test_family": test_family, "max_steps": max_steps, "seed": seed,
        "expert_noise": _split_list(noise, float), "random_fraction": random_fraction,
        "workers": workers, "test_every": test_every, "overwrite": overwrite or None,
    }
    overrides = [f"{k}={json.dumps(v)}" for k, v in flags.items() if v is not None] + list(set_)
    try:
        cfg = load_config(WebDataConfig, config, overrides)
    except (ConfigError, ValueError) as e:
        _fail(str(e))
    try:
        meta = build_web_dataset(cfg, gold_fields, progress=not quiet)
    except (RuntimeError, ImportError) as e:  # no Chromium / no Playwright: one line
        _fail(str(e))
    rates = {k: round(v["success_rate"], 2) for k, v in meta["families"].items()}
    typer.echo(f"{cfg.out}: {meta['transitions']} transitions {meta['counts']} in "
               f"{meta['build']['seconds']:.1f}s ({meta['build']['steps_per_s'] or 0:.2f} steps/s); "
               f"unchanged {meta['unchanged_share'] or 0:.0%}; success {json.dumps(rates)}")


@app.command("info")
@episode_options
def info(
    folder: Path = typer.Argument(..., help="folder of .npz episodes (or one .npz file)"),
    episodes: dict | None = None,
) -> None:
    """Episodes, frames, split sizes and success rate per task of an episode folder.

    Takes the episode flags of every command (key map, split, crop/resize), so a folder can be
    checked with the exact flags later given to `wm tokenizer train` / `wm pretrain video`.

    Every file's frame size, channel count and action dimension are checked to agree (the
    expected frame size is meta.json's ``image_size`` when it has one, else the most common
    among the files; the expected action dimension the most common). Files that differ, or do
    not load, are listed after the summary under ``error:`` and the exit code is 2.
    """
    from worldmodels.episode_config import EpisodeConfig
    from worldmodels.episodes import (
        EpisodeError,
        episode_files,
        load_episode,
        read_meta,
        scan_episodes,
    )

    try:
        ep = EpisodeConfig(**{k: v for k, v in (episodes or {}).items() if v is not None})
        km = ep.keymap()
        files = episode_files(folder)
        meta = read_meta(folder) if folder.is_dir() else {}
    except (EpisodeError, ValueError) as e:
        _fail(str(e))
    size = meta.get("image_size")
    shapes, problems = scan_episodes(files, km, frame_size=(size, size) if size else None,
                                     expected_from=f"image_size in {folder / 'meta.json'}")
    eps = []
    for s in shapes:
        try:
            eps.append(load_episode(s.path, km))
        except EpisodeError as e:  # what headers cannot tell: pixel ranges, NaN actions
            problems.append(str(e))
    if eps:
        _print_info(folder, km, files, eps, meta, ep)
    if problems:
        shown = "\n  ".join(problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        _fail(f"{len(problems)} problem(s) in {len(files)} episode files; the loaders "
              f"(tokenizer, world model) refuse this folder until they are fixed:\n  {shown}{more}")


def _split_line(folder: Path, files: list[Path], meta: dict, ep) -> str:
    """"train a, test b; <rule>" of the episodes section's split rule (or why it fails)."""
    from worldmodels.episode_config import DEFAULT_TEST_EVERY
    from worldmodels.episodes import EpisodeError

    if ep.test_tail:
        return f"every file in both; test = the last {ep.test_tail} steps of each"
    if ep.held_out:
        rule = f"held out: {','.join(ep.held_out)}"
    else:
        rule = f"test_every={ep.test_every or int(meta.get('test_every', DEFAULT_TEST_EVERY))}"
    try:
        n_test = len(ep.split(folder, "test")[0])
    except EpisodeError as e:
        return f"{rule}: {e}"
    return f"train {len(files) - n_test}, test {n_test}; {rule}"


def _print_info(folder: Path, km, files: list[Path], eps: list, meta: dict, ep) -> None:
    """The summary lines of `wm data info` over the episodes that loaded."""
    import dataclasses

    import numpy as np

    from worldmodels.clips import describe_preprocessing
    from worldmodels.episodes import read_episode_shape

    lens = [len(e) for e in eps]
    sizes = sorted({e.image.shape[1:3] for e in eps})
    typer.echo(f"folder:     {folder}")
    typer.echo(f"key map:    {dataclasses.asdict(km)}")
    typer.echo(f"episodes:   {len(files)} ({_split_line(folder, files, meta, ep)})"
               + (f"; only {len(eps)} load" if len(eps) < len(files) else ""))
    typer.echo(f"frames:     {sum(lens)} (per episode min {min(lens)}, max {max(lens)})")
    typer.echo(f"image size: {', '.join(f'{h}x{w}' for h, w in sizes)}")
    note = describe_preprocessing([read_episode_shape(e.path, km) for e in eps], km)
    if note:
        typer.echo(f"preprocess: {note}")
    dims = sorted({e.action.shape[1] for e in eps if e.action is not None})
    typer.echo(f"action dim: {dims if dims else 'none'}")
    by_task: dict[str, list[bool]] = {}
    for e in eps:
        if e.success is not None and len(e.success):
            by_task.setdefault(e.task or "?", []).append(bool(e.success[-1]))
    for task, v in sorted(by_task.items()):
        typer.echo(f"success[{task}]: {np.mean(v):.2f} over {len(v)} episodes (final frame)")
    if meta.get("counts_by_policy"):
        typer.echo(f"policies:   {meta['counts_by_policy']}")
