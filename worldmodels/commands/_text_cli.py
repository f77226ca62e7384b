"""What the text world models' commands (`wm pretrain|rlvr|eval text-game|web`) share: the body of
each command after its options are read (``worldmodels.commands.text_game`` and ``.web``)."""

from __future__ import annotations

from pathlib import Path

import typer

from worldmodels.commands._common import build_config
from worldmodels.train.grpo_config import PRESETS, grpo_preset


def fail(e: Exception) -> None:
    """Print ``error: <e>`` on stderr and exit with code 2."""
    typer.echo(f"error: {e}", err=True)
    raise typer.Exit(code=2) from e


def pretrain_main(cfg_cls, config, flags: dict, sets, resume: bool, may_change) -> None:
    """Build ``cfg_cls`` from the recipe, flags and --set, run ``run_pretrain``, print one line."""
    from worldmodels.pipelines import run_pretrain
    from worldmodels.records import RecordError

    cfg = build_config(cfg_cls, config=config, flags=flags, sets=sets, resume=resume, may_change=may_change)
    try:
        res = run_pretrain(cfg, resume=resume)
    except (FileNotFoundError, FileExistsError, ValueError, RecordError) as e:
        fail(e)
    typer.echo(f"done: step {res.get('step')} loss {res.get('loss', float('nan')):.4f} "
               f"eval_loss {res.get('eval_loss', float('nan')):.4f} -> {cfg.out}")


def rlvr_main(cfg_cls, config, flags: dict, sets, resume: bool, may_change, preset: str | None) -> None:
    """Build ``cfg_cls`` (with the GRPO ``preset``), the reward, run ``run_rlvr``, print one line."""
    import os

    from worldmodels.pipelines import run_rlvr
    from worldmodels.records import RecordError
    from worldmodels.rewards import build_reward

    try:  # the preset's GRPO values are the base layer, under the recipe, the flags and --set
        grpo = grpo_preset(preset) if preset else None
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    cfg = build_config(cfg_cls, config=config, flags=flags, sets=sets, resume=resume, may_change=may_change,
                       base=cfg_cls(grpo=grpo) if grpo else None,
                       preset_layer={"grpo": PRESETS[preset]} if grpo else None)
    try:
        reward_fn = build_reward(cfg.reward, cfg.aggregate, cfg.gamma, dict(cfg.reward_options))
    except (ValueError, FileNotFoundError) as e:
        fail(ValueError(f"--reward {cfg.reward!r}: {e}"))
    try:
        last = run_rlvr(cfg, resume=resume, reward=reward_fn)
    except (FileNotFoundError, FileExistsError, ValueError, RecordError) as e:
        fail(e)
    if os.environ.get("RANK", "0") != "0":
        return
    if not last:
        typer.echo(f"nothing to do: {cfg.out} already reached grpo.max_steps={cfg.grpo.max_steps}")
        return
    shown = {k: round(v, 5) for k, v in last.items() if isinstance(v, float) and
             (k.startswith("eval/") or k in ("reward", "kl"))}
    typer.echo(f"done: step {last.get('step')} {shown} -> {cfg.out}")


def eval_main(model: str, overrides, out, device: str, eval_kw: dict, examples: int) -> None:
    """Load the world model ``model`` with the task ``overrides`` (a callable returning keyword
    overrides), evaluate its held-out items with the rows recorded, write and print the report."""
    from worldmodels.commands.eval import write_report
    from worldmodels.evaluate import EvalConfig, evaluate
    from worldmodels.records import RecordError
    from worldmodels.world_model import WorldModel

    try:
        wm = WorldModel.from_pretrained(model, device=device, **overrides())
        ds = wm.task.dataset("test")
    except (FileNotFoundError, ValueError, RecordError) as e:
        fail(e)
    out_dir = Path(out) if out else Path(model) / "eval"
    wm.task.eval_rows = []
    res = evaluate(wm.model, wm.task, ds, EvalConfig(**eval_kw), device=wm.device, examples=examples,
                   out_dir=out_dir, progress=True)
    res.update(model=str(model), data=str(wm.task.test))
    _, md = write_report(wm.task, res, out_dir)
    typer.echo(md)


# ------------------------------------------------------------------ command factories
def add_pretrain(app: typer.Typer, may_change, name: str, cfg_cls, doc: str, what: str,
                 styles: tuple[str, ...] = ("rlvr_world", "compact"), recipe: str | None = None) -> None:
    """Add `wm pretrain <name>` (``cfg_cls``: its config; ``what``: "records" / "transitions";
    ``styles``: the prompt styles --style lists; ``recipe``: the example recipe --config names)."""
    from worldmodels.commands._common import config_epilog, resume_help

    styles = " | ".join(styles)
    recipe = recipe or f"data/recipes/{name.replace('-', '_')}_pretrain_tiny.yaml"

    @app.command(name, epilog=config_epilog(cfg_cls), help=doc)
    def command(
        config: Path = typer.Option(None, "--config", help=f"YAML recipe, e.g. {recipe}"),
        train: str = typer.Option(None, "--train", help=f"training {what} (task.train)"),
        test: str = typer.Option(None, "--test", help=f"held-out {what} (task.test)"),
        style: str = typer.Option(None, "--style", help=f"prompt style: {styles} (task.prompt_style)"),
        out: str = typer.Option(None, "--out", help="run / world-model directory (out)"),
        init: str = typer.Option(None, "--init", help=f"{name} world model to continue from (init)"),
        preset: str = typer.Option(None, "--preset", help="backbone preset (model.preset)"),
        steps: int = typer.Option(None, "--steps", help="optimizer steps (train.steps)"),
        max_minutes: float = typer.Option(None, "--max-minutes", help="time budget; the lr schedule "
                                          "is fitted to it (train.max_minutes)"),
        set_: list[str] = typer.Option(None, "--set", help="dotted override, e.g. task.max_train=500 (keys below)"),
        resume: bool = typer.Option(False, "--resume", help=resume_help(may_change, {"train.steps": "--steps"})),
    ) -> None:
        flags = {"task.train": train, "task.test": test, "task.prompt_style": style, "out": out,
                 "init": init, "model.preset": preset, "train.steps": steps, "train.max_minutes": max_minutes}
        pretrain_main(cfg_cls, config, flags, set_, resume, may_change)


def add_rlvr(app: typer.Typer, may_change, name: str, cfg_cls, doc: str, what: str, rewards: str,
             set_example: str) -> None:
    """Add `wm rlvr <name>` (``rewards``: the --reward help; ``set_example``: a --set example)."""
    from worldmodels.commands._common import config_epilog, resume_help

    @app.command(name, epilog=config_epilog(cfg_cls), help=doc)
    def command(
        config: Path = typer.Option(None, "--config", help=f"YAML recipe, e.g. data/recipes/{name.replace('-', '_')}_rlvr_tiny.yaml"),
        init: str = typer.Option(None, "--init", help=f"pretrained {name} world model (init)"),
        reward: str = typer.Option(None, "--reward", help=f"{rewards} | pkg.mod:fn (reward)"),
        out: str = typer.Option(None, "--out", help="output directory (out)"),
        train: str = typer.Option(None, "--train", help=f"training {what} (task.train); default: the model's"),
        preset: str = typer.Option(None, "--preset", help=f"GRPO preset: {' | '.join(PRESETS)}"),
        steps: int = typer.Option(None, "--steps", help="GRPO steps (grpo.max_steps)"),
        set_: list[str] = typer.Option(None, "--set", help=f"dotted override, e.g. {set_example} (keys below)"),
        resume: bool = typer.Option(False, "--resume", help=resume_help(may_change, {"grpo.max_steps": "--steps"})),
    ) -> None:
        flags = {"init": init, "reward": reward, "out": out, "task.train": train, "grpo.max_steps": steps}
        rlvr_main(cfg_cls, config, flags, set_, resume, may_change, preset)


def add_eval(app: typer.Typer, name: str, doc: str, what: str, overrides, flag: str, flag_help: str,
             reduce_help: str) -> None:
    """Add `wm eval <name>`. ``overrides(data, max_new_tokens, max_prompt_tokens, on_overflow,
    flag)`` returns the task's keyword overrides; ``flag``: the task's own on/off option
    (e.g. "--compat/--no-compat"), None by default (= the model's)."""

    @app.command(name, help=doc)
    def command(
        model: str = typer.Option(..., "--model", help=f"world-model directory (wm pretrain/rlvr {name} --out)"),
        data: str = typer.Option(None, "--data", help=f"held-out {what} (default: the model's task.test)"),
        out: str = typer.Option(None, "--out", help="output folder (default: <model>/eval)"),
        items: int = typer.Option(256, "--items", min=1, help=f"{what} (evenly spaced)"),
        samples: int = typer.Option(1, "--samples", min=1, help="samples per item"),
        temperature: float = typer.Option(1.0, "--temperature", min=1e-6),
        top_k: int = typer.Option(1, "--top-k", min=0, help="1 = greedy (default); 0 = no truncation"),
        batch_size: int = typer.Option(8, "--batch-size", min=1),
        max_new_tokens: int = typer.Option(None, "--max-new-tokens", min=1, help="answer limit (default: the model's)"),
        max_prompt_tokens: int = typer.Option(None, "--max-prompt-tokens", min=1, help="prompt limit (default: the model's)"),
        reduce: bool = typer.Option(None, "--reduce/--no-reduce", help=f"over-long prompts: {reduce_help} (default: the model's)"),
        task_flag: bool = typer.Option(None, flag, help=f"{flag_help} (default: the model's)"),
        examples: int = typer.Option(4, "--examples", min=0, help="example predictions to write"),
        seed: int = typer.Option(0, "--seed"),
        device: str = typer.Option("auto", "--device"),
    ) -> None:
        on_overflow = None if reduce is None else ("reduce" if reduce else "error")
        eval_main(model, lambda: overrides(data, max_new_tokens, max_prompt_tokens, on_overflow, task_flag), out,
                  device, dict(items=items, n_samples=samples, temperature=temperature, top_k=top_k or None,
                               seed=seed, batch_size=batch_size), examples)
