"""`wm plan`: model-predictive control in the MuJoCo robot world (CEM, MPPI), and the state readout.

    wm plan readout --out runs/readout                       # train the frame -> task-state CNN
    wm plan robot --task push --planner cem --model oracle --episodes 20
    wm plan robot --task push --model random,oracle,runs/wm_video --episodes 20 --out runs/plan
    wm plan robot --task drawer --planner mppi --model runs/wm_video --set knobs.num_samples=32
    wm plan robot --task push --model runs/wm_video --set contact_gate=true   # count only pushes the pusher made
    wm plan pool runs/plan runs/plan_seed30 --task push   # pool runs; one-sided Fisher p vs random
    wm plan robot --out runs/plan --resume --episodes 40  # continue every run there to 40 episodes

Each model gets ``<out>/<task>_<planner>_<model>/`` with summary.json, config.yaml, episodes.jsonl
(one line per finished episode) and GIFs; a table compares success rates and reports world
models as a fraction of the oracle. ``--resume`` continues the runs under ``--out`` with their
recorded settings, running only missing episodes; a flag, ``--set`` or ``--config`` value that
differs from a run's recorded one is an error naming the field and both values, except
``RESUME_MAY_CHANGE`` (episodes, videos).
"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="model-predictive control with a world model (CEM, MPPI) in the robot world",
                  no_args_is_help=True)


def _slug(model: str) -> str:
    return model if model in ("random", "oracle") else Path(model).name or "model"


# What --resume may change: how many episodes (more seeds) and how many are kept as GIFs --
# never what an episode is (task, model, planner knobs, cost, steps, seeds).
RESUME_MAY_CHANGE = ("episodes", "videos")
_FIELD_FLAGS = ("task", "planner", "model", "episodes", "max_steps", "cost", "readout", "image_size",
                "action_repeat", "seed", "videos")


@app.command("robot")
def robot(
    ctx: typer.Context,
    task: str = typer.Option("push", help="robot task: push, drawer, drawer_open, drawer_close"),
    planner: str = typer.Option("cem", help="cem or mppi"),
    model: str = typer.Option("oracle", help="comma list of: random, oracle, a world-model dir"),
    episodes: int = typer.Option(10, help="seeded episodes per model"),
    max_steps: int = typer.Option(50, help="control steps per episode"),
    cost: str = typer.Option("state", help="state (readout), pixel or lpips (goal image)"),
    readout: str = typer.Option("runs/readout", help="state-readout dir (learned models, cost=state)"),
    image_size: int = typer.Option(64, help="frame size (match the world model)"),
    action_repeat: int = typer.Option(0, help="env steps each planned action is held; 0 = the "
                                      "world model's frame_skip (1 for oracle); set it to compare "
                                      "the oracle at equal knobs"),
    seed: int = typer.Option(0, help="first episode seed"),
    videos: int = typer.Option(3, help="episodes saved as GIFs"),
    out: str = typer.Option("runs/plan", help="output root"),
    config: Path = typer.Option(None, help="YAML with PlanRunConfig fields"),
    set_: list[str] = typer.Option(None, "--set", help="dotted override, e.g. knobs.iterations=4"),
    resume: bool = typer.Option(False, help="continue the runs under --out (those of the --task/"
                                "--planner/--model given) with their recorded settings "
                                "(config.yaml), running only missing episodes; other values given "
                                "must equal them, except: " + ", ".join(f"--{f}" for f in RESUME_MAY_CHANGE)),
) -> None:
    """Closed-loop MPC success rates over seeded episodes (random / world model / oracle)."""
    import os

    os.environ.setdefault("MUJOCO_GL", "egl")
    from planners.mpc import PlanRunConfig, run_mpc
    from worldmodels.config import load_config

    if resume:  # every run checked before any runs
        from worldmodels.commands._common import given

        explicit = {k: v for k, v in ctx.params.items() if k in _FIELD_FLAGS and given(ctx, k)}
        jobs = _resumed_runs(Path(out), explicit, config, set_)
    else:
        jobs = [x.strip() for x in model.split(",") if x.strip()]
    rows = []
    for job in jobs:
        try:
            if resume:
                cfg = job
            else:
                base = PlanRunConfig(task=task, planner=planner, model=job, episodes=episodes, max_steps=max_steps,
                                     cost=cost, readout=readout, image_size=image_size, seed=seed, videos=videos,
                                     action_repeat=action_repeat,
                                     out=str(Path(out) / f"{task}_{planner}_{_slug(job)}"))
                cfg = load_config(PlanRunConfig, config, set_, base=base)
            rows.append(run_mpc(cfg, resume=resume))
        except (FileNotFoundError, ValueError) as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(code=2) from e
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["task"], r["planner"]), []).append(r)
    for (t, p), group in groups.items():
        _compare(group, Path(out), t, p)


def _resumed_runs(root: Path, explicit: dict, config: Path | None, sets: list[str] | None) -> list:
    """The recorded configs of the runs under ``root`` (``<root>/*/config.yaml``) that the
    explicit --task/--planner/--model select, each with every explicit value (flags, --config
    file, --set) checked against it. Exits 2 naming what is missing or differs."""
    from planners.mpc import PlanRunConfig
    from worldmodels.commands._common import resumed_config
    from worldmodels.config import (
        ConfigError,
        parse_overrides,
        read_config_file,
        read_recorded_config,
    )

    def fail(msg: str):
        typer.echo(f"error: --resume: {msg}", err=True)
        raise typer.Exit(code=2)

    models = {_slug(m.strip()): m.strip() for m in explicit.get("model", "").split(",") if m.strip()}
    try:
        layers = (read_config_file(config) if config else None, parse_overrides(sets))
        recorded = {d: read_recorded_config(PlanRunConfig, d)
                    for d in sorted(p.parent for p in root.glob("*/config.yaml"))}
    except ConfigError as e:
        fail(str(e))
    runs = {d: c for d, c in recorded.items()
            if c.task == explicit.get("task", c.task) and c.planner == explicit.get("planner", c.planner)
            and (not models or _slug(c.model) in models)}
    missing = sorted(set(models) - {_slug(c.model) for c in runs.values()})
    if not runs or missing:
        fail(f"no recorded `wm plan robot` run under {root} for "
             + ", ".join(f"{k} {v!r}" for k, v in explicit.items() if k in ("task", "planner"))
             + (f" model(s) {missing}" if missing else "")
             + f"; runs there: {[d.name for d in recorded] or 'none'}")
    cfgs = []
    for d, c in runs.items():  # the requested model is the one of this run's directory name
        asked = explicit | ({"model": models[_slug(c.model)]} if models else {})
        cfgs.append(resumed_config(PlanRunConfig, d, asked, *layers, may_change=RESUME_MAY_CHANGE))
    return cfgs


def _compare(rows: list[dict], out: Path, task: str, planner: str) -> None:
    """Write ``compare_<task>_<planner>.json`` and print the table of one task and planner."""
    from planners.report import write_json

    oracle = next((r["success_rate"] for r in rows if r["model"] == "oracle"), None)
    table = [{k: r[k] for k in ("model", "success_rate", "successes", "episodes", "mean_steps",
                                  "mean_progress", "seconds")}
             | {"fraction_of_oracle": (r["success_rate"] / oracle) if oracle else None} for r in rows]
    write_json(out / f"compare_{task}_{planner}.json", {"task": task, "planner": planner, "rows": table})
    typer.echo(f"\n{'model':<28}{'success':>10}{'n':>6}{'vs oracle':>11}{'progress cm':>13}{'s/episode':>11}")
    for r in rows:
        frac = f"{r['success_rate'] / oracle:.2f}" if oracle else "-"
        typer.echo(f"{r['model']:<28}{r['success_rate']:>10.2f}{r['episodes']:>6}{frac:>11}"
                   f"{100 * r['mean_progress']:>13.1f}{r['seconds'] / r['episodes']:>11.1f}")


@app.command("pool")
def pool(
    runs: list[Path] = typer.Argument(..., help="`wm plan robot` output roots, run dirs or summary.json files"),
    baseline: str = typer.Option("random", help="model the others are tested against"),
    oracle: str = typer.Option("oracle", help="model whose rate the others are a fraction of"),
    task: str = typer.Option(None, help="pool only this task's runs (needed when the paths hold several)"),
    out: Path = typer.Option(None, help="also write the rows to this JSON file"),
) -> None:
    """Pool episodes per model over several runs (a re-run episode counts once) and test each
    model against the baseline: one-sided Fisher exact p that it succeeds more often, on the
    same episodes when the baseline ran them all."""
    from planners.pooling import pool_runs
    from planners.report import write_json

    try:
        rows = pool_runs(runs, baseline=baseline, oracle=oracle, task=task)
    except (FileNotFoundError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from e
    if out:
        write_json(out, {"runs": [str(r) for r in runs], "baseline": baseline, "rows": rows})

    def fmt(v, spec):
        return "-" if v is None else format(v, spec)

    typer.echo(f"{rows[0]['task']}: {'model':<28}{'successes':>11}{'rate':>7}{'vs oracle':>11}"
               f"{'p vs ' + baseline:>14}{'matched':>9}")
    for r in rows:
        matched = "-" if r["matched_episodes"] is None else ("yes" if r["matched_episodes"] else "NO")
        typer.echo(f"{'':<{len(r['task']) + 2}}{r['model']:<28}{r['successes']:>5} / {r['episodes']:<3}"
                   f"{r['success_rate']:>7.3f}{fmt(r['fraction_of_oracle'], '.2f'):>11}"
                   f"{fmt(r['p_vs_baseline'], '.3g'):>14}{matched:>9}")


@app.command("readout")
def readout_cmd(
    out: str = typer.Option("runs/readout", help="where to save the readout"),
    episodes: int = typer.Option(500, help="rendered training episodes (split over push/drawer)"),
    steps: int = typer.Option(40, help="steps per episode"),
    every: int = typer.Option(4, help="keep every n-th frame"),
    train_steps: int = typer.Option(3000, help="optimiser steps"),
    width: int = typer.Option(32, help="CNN width"),
    image_size: int = typer.Option(64, help="frame size"),
    heldout: int = typer.Option(40, help="held-out episodes (seed+1, every 2nd frame)"),
    seed: int = typer.Option(0, help="data seed (held-out set uses seed+1)"),
) -> None:
    """Train the frame -> task-state readout; prints and saves its held-out error (eval.json)."""
    import json
    import os

    os.environ.setdefault("MUJOCO_GL", "egl")
    from worldmodels.envs.robot_readout import collect_frames, evaluate_readout, train_readout

    tasks = ("push", "drawer")
    f, s, _ = collect_frames(tasks, episodes, steps, image_size, seed=seed, every=every, progress=True)
    fh, sh, nh = collect_frames(tasks, heldout, steps, image_size, seed=seed + 1, every=2)
    ro = train_readout(f, s, steps=train_steps, width=width, seed=seed, progress=True)
    result = evaluate_readout(ro, fh, sh, nh)
    ro.save(out)
    (Path(out) / "eval.json").write_text(json.dumps(result, indent=2))
    typer.echo(json.dumps(result, indent=2))
