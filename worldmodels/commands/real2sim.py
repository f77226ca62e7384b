"""`wm real2sim`: rank image policies inside a world model and compare with MuJoCo (SIMPLER metrics).

    wm plan readout --out runs/readout                         # success judge on generated frames
    wm real2sim policies --out runs/policies                   # BC policies of different competence
    wm real2sim run --model runs/wm_video --model runs/wm_rlvr --episodes 50 --report runs/real2sim
    wm real2sim run --model oracle-loop --episodes 10 --report /tmp/r2s   # perfect-model control
    wm real2sim merge runs/r2s_base runs/r2s_rlvr --report runs/real2sim  # side by side
    wm real2sim run --model runs/wm_video --tasks push --set contact_gate=true  # judge only real pushes

The report directory gets index.html (tables, scatter plot, side-by-side GIFs), results.json,
gifs/, config.yaml and rows.jsonl (each task/policy row as it finishes). ``--resume`` continues
an interrupted run in ``--report`` with its recorded settings, measuring only the rows it has
not finished (``wm real2sim run --report runs/real2sim --resume``); a flag, ``--set`` or
``--config`` value that differs from a recorded one is an error naming the field and both
values, except ``RESUME_MAY_CHANGE`` (``--batch``).
"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="rank policies inside a world model and compare with reality (SIMPLER metrics)",
                  no_args_is_help=True)


# What --resume may change: how many world-model episodes run in lock-step (throughput only)
# -- never what is measured (models, policies, readout, tasks, episodes, seeds, steps).
RESUME_MAY_CHANGE = ("batch",)
_FIELDS = {"model": "models", "name": "names", "tasks": "tasks", "readout": "readout", "policies": "policies",
           "episodes": "episodes", "max_steps": "max_steps", "image_size": "image_size", "batch": "batch",
           "seed": "seed", "reuse_real": "reuse_real", "action_repeat": "action_repeat"}


@app.command("run")
def run(
    ctx: typer.Context,
    model: list[str] = typer.Option(None, "--model", help="world-model dir (repeat: base then RLVR); 'oracle-loop' = true simulator"),
    name: list[str] = typer.Option(None, "--name", help="display name per --model (default base, rlvr)"),
    tasks: str = typer.Option("push,drawer", help="comma list of task families"),
    readout: str = typer.Option("runs/readout", help="state-readout dir"),
    policies: str = typer.Option("runs/policies", help="BC policies dir ('' for scripted + random only)"),
    episodes: int = typer.Option(50, help="episodes per policy per side per task"),
    max_steps: int = typer.Option(40, help="steps per episode"),
    image_size: int = typer.Option(64, help="frame size"),
    batch: int = typer.Option(25, help="world-model episodes in lock-step"),
    seed: int = typer.Option(5000, help="first episode seed"),
    report: str = typer.Option("runs/real2sim", help="output dir for index.html + results.json"),
    reuse_real: str = typer.Option("", help="results.json whose real side (same seeds) is reused"),
    action_repeat: int = typer.Option(0, help="env steps each policy action is held, on both sides; "
                                      "0 = the world models' frame_skip (6 for a 3.3 Hz model)"),
    config: Path = typer.Option(None, help="YAML with Real2SimConfig fields"),
    set_: list[str] = typer.Option(None, "--set", help="dotted override"),
    resume: bool = typer.Option(False, help="continue the run in --report with its recorded settings "
                                "(config.yaml), measuring only the task/policy rows it has not "
                                "finished (rows.jsonl); other values given must equal them, except: "
                                + ", ".join(f"--{f}" for f in RESUME_MAY_CHANGE)),
) -> None:
    """Real vs world-model success per policy; Pearson and MMRV per task and overall; HTML report."""
    import os

    os.environ.setdefault("MUJOCO_GL", "egl")
    from planners.mpc import load_world_model
    from planners.real2sim import Real2SimConfig, evaluate, load_real, resolve_action_repeat
    from planners.real2sim_rows import RowLog
    from planners.report import write_report
    from planners.sim_model import LoopSim
    from worldmodels.commands._common import given, resumed_config
    from worldmodels.config import (
        ConfigError,
        load_config,
        parse_overrides,
        read_config_file,
        save_config,
    )
    from worldmodels.envs.robot_readout import StateReadout

    split_tasks = tuple(t.strip() for t in tasks.split(",") if t.strip())
    try:
        if resume:  # the recorded config; the explicit values (flags, file, --set) checked against it
            explicit = {_FIELDS[k]: (split_tasks if k == "tasks" else tuple(v) if k in ("model", "name") else v)
                        for k, v in ctx.params.items() if k in _FIELDS and given(ctx, k)}
            layers = (explicit, read_config_file(config) if config else None, parse_overrides(set_))
            cfg = resumed_config(Real2SimConfig, report, *layers, may_change=RESUME_MAY_CHANGE, run_field=None)
        else:
            base = Real2SimConfig(tasks=split_tasks, models=tuple(model or ()), names=tuple(name or ()),
                                  readout=readout, policies=policies, episodes=episodes, max_steps=max_steps,
                                  image_size=image_size, batch=batch, seed=seed, reuse_real=reuse_real,
                                  action_repeat=action_repeat)
            cfg = load_config(Real2SimConfig, config, set_, base=base)
        ro = StateReadout.load(cfg.readout)
        models = [LoopSim(cfg.image_size) if m == "oracle-loop" else load_world_model(m, "push", cfg.image_size)
                  for m in cfg.models]
        repeat = resolve_action_repeat(cfg.action_repeat, models)  # a bad --action-repeat fails here, not mid-run
        if cfg.reuse_real:  # ... and a --reuse-real measured under other settings
            load_real(cfg, repeat)
        rows = RowLog(report, len(models), cfg.image_size, resume)  # fresh: an empty rows.jsonl
    except (ConfigError, FileNotFoundError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from e
    save_config(cfg, report)
    results, videos = evaluate(cfg, models, ro, rows=rows)
    ro_eval = Path(cfg.readout) / "eval.json"
    if ro_eval.is_file():
        import json

        e = json.loads(ro_eval.read_text())
        results["readout"] = {"push+drawer (held-out frames)": {"mae": e["mae"], "success_agreement": e["success_agreement"]}}
    page = write_report(results, videos, report)
    typer.echo(f"\n{'model':<12}" + "".join(f"{s + ' r / mmrv':>24}" for s in [*cfg.tasks, "overall"]))
    for m, per in results["metrics"].items():
        typer.echo(f"{m:<12}" + "".join(f"{per[s]['pearson']:>15.3f} / {per[s]['mmrv']:.3f}" for s in [*cfg.tasks, "overall"]))
    typer.echo(f"report: {page}")


@app.command("policies")
def policies_cmd(
    out: str = typer.Option("runs/policies", help="output root (<out>/<family>/<policy>/)"),
    tasks: str = typer.Option("push,drawer", help="comma list of task families"),
    image_size: int = typer.Option(64, help="frame size"),
    small_demos: int = typer.Option(6, help="demonstrations for the weak BC policy"),
    large_demos: int = typer.Option(60, help="demonstrations for the strong BC policy"),
    small_steps: int = typer.Option(300, help="training steps, weak policy"),
    large_steps: int = typer.Option(1500, help="training steps, strong policy"),
    seed: int = typer.Option(0, help="demo seed"),
) -> None:
    """Behaviour-clone two CNN policies per task family (few demos/short training vs many/long)."""
    import os

    os.environ.setdefault("MUJOCO_GL", "egl")
    from planners.policies import collect_demos, train_bc

    for fam in [t.strip() for t in tasks.split(",") if t.strip()]:
        frames, acts = collect_demos(fam, large_demos, image_size=image_size, seed=seed)
        per_ep = len(frames) // large_demos
        for pname, demos, steps in (("bc_small", small_demos, small_steps), ("bc_large", large_demos, large_steps)):
            n = demos * per_ep
            pol = train_bc(frames[:n], acts[:n], steps=steps, seed=seed, name=pname,
                           description=f"BC CNN, {demos} expert demos, {steps} steps")
            pol.save(Path(out) / fam / pname)
            typer.echo(f"saved {Path(out) / fam / pname}: {pol.description}")


@app.command("merge")
def merge(
    runs: list[str] = typer.Argument(..., help="report dirs of `wm real2sim run` on the same episodes"),
    report: str = typer.Option(..., help="output dir for the combined report"),
    episodes: int = typer.Option(None, help="use only the first N episodes of every run"),
) -> None:
    """Put the world models of several runs side by side (e.g. base measured first, RLVR later)."""
    from planners.real2sim import merge_results
    from planners.report import write_report

    try:
        results, videos = merge_results(runs, episodes)
    except (FileNotFoundError, ValueError, KeyError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from e
    page = write_report(results, videos, report)
    for m, per in results["metrics"].items():
        typer.echo(f"{m:<12} overall pearson {per['overall']['pearson']:.3f}  mmrv {per['overall']['mmrv']:.3f}")
    typer.echo(f"report: {page}")
