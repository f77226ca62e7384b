"""`wm rlvr`: RLVR post-training (GRPO on verifiable metric rewards).

    wm rlvr video --init runs/wm_video --reward mae --preset tiny --out runs/rlvr_mae
    wm rlvr video --init runs/wm_video --reward lpips+mae --aggregate mean
    wm rlvr video --init runs/wm_skip6_comp --reward readout_state+mae --readout runs/readout
    wm rlvr video --config data/recipes/rlvr_tiny.yaml --set grpo.beta=0 --set grpo.max_steps=50
    wm rlvr video --out runs/rlvr_mae --resume                          # continue exactly
    wm rlvr video --out runs/rlvr_mae --resume --steps 600              # ... for more steps
    torchrun --nproc_per_node 2 -m worldmodels.cli rlvr video --init runs/wm_video --reward mae

``--resume`` continues the run with the settings recorded in ``<out>/config.yaml``; a flag,
``--set`` or ``--config`` value that differs from them is an error naming the field and both
values, except the step budget and the logging/eval/save frequencies (``RESUME_MAY_CHANGE``).

The reward is built first, so ``--reward lpips`` without the LPIPS backbone weights stops at
once with the metrics module's message, and an unknown name lists the registered rewards.
The output directory is itself a world model (``worldmodel.json`` + ``backbone/`` +
``tokenizer/``), refreshed at every checkpoint, plus ``checkpoints/``, ``metrics.jsonl``
(reward, kl, clip_ratio, ..., ``eval/*`` held-out video metrics) and ``config.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer

from worldmodels.commands._common import resume_help, resumed_config
from worldmodels.train.grpo_config import PRESETS, GRPOConfig, grpo_preset

app = typer.Typer(help="RLVR post-training (GRPO on verifiable metric rewards).",
                  no_args_is_help=True)

# What --resume may change: the step budget and how often it logs/evaluates/saves -- never
# what is optimised (reward, init = KL reference, data, GRPO knobs) or what eval/* measures.
RESUME_MAY_CHANGE = ("grpo.max_steps", "grpo.logging_steps", "grpo.eval_steps", "grpo.save_steps",
                     "grpo.sample_table_steps")


@dataclass
class VideoEvalConfig:
    """Held-out evaluation run every ``grpo.eval_steps`` steps (logged as ``eval/*``).

    clips: number of held-out (test split) clips, evenly spaced; 0 disables evaluation.
    n_samples: rollouts per clip; metrics are means over samples (best-of-n added when > 1).
    temperature: sampling temperature of the evaluation rollouts.
    seed: sampling seed (fixed, so differences between evaluations come from the model).
    batch_size: clips per rollout call.
    """

    clips: int = 64
    n_samples: int = 1
    temperature: float = 1.0
    seed: int = 1234
    batch_size: int = 32

    def __post_init__(self) -> None:
        from worldmodels.train.grpo_config import MIN_TEMPERATURE

        if self.clips < 0 or self.n_samples < 1 or self.batch_size < 1:
            raise ValueError(f"eval: clips >= 0, n_samples >= 1 and batch_size >= 1 required, got {self}")
        if not MIN_TEMPERATURE <= self.temperature < float("inf"):  # NaN / overflow in logits / T
            raise ValueError(f"eval.temperature must be finite and >= {MIN_TEMPERATURE}, got {self.temperature}")


@dataclass
class RLVRVideoConfig:
    """`wm rlvr video`.

    init: the pretrained world model directory (`wm pretrain video` output).
    reward: reward spec: a registered name (mae, mse, psnr, ssim, lpips, lpips_alex, ...),
        a combination (lpips+mae, lpips:1,mae:0.5) or a dotted path pkg.module:function.
    readout: state-readout directory (`wm plan readout`) for the ``readout_state`` reward.
    aggregate: multi-frame aggregation of per-frame rewards: mean | last | discount.
    gamma: discount of ``aggregate: discount``.
    out: output run / world-model directory.
    data: episode folder; null = the one recorded in the world model (worldmodel.json).
    cache_dir: where pre-tokenised ids are cached (null: <data>/.token_cache).
    grpo: GRPOConfig (the GRPO knobs, TRL names).
    eval: VideoEvalConfig (held-out metrics during training).
    """

    init: str = "runs/wm_video"
    reward: str = "mae"
    readout: str | None = None
    aggregate: str = "mean"
    gamma: float = 0.9
    out: str = "runs/rlvr_video"
    data: str | None = None
    cache_dir: str | None = None
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    eval: VideoEvalConfig = field(default_factory=VideoEvalConfig)

    def __post_init__(self) -> None:
        if self.aggregate not in ("mean", "last", "discount"):
            raise ValueError(f"aggregate must be mean|last|discount, got {self.aggregate!r}")
        if not 0 < self.gamma <= 1:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")
        if not self.init or not self.out:
            raise ValueError("init and out must be set")


def video_eval_fn(task, cfg: VideoEvalConfig, device):
    """``fn(model) -> {metric: value}`` on ``cfg.clips`` held-out clips: single-step (first
    predicted frame) and multi-step (all predicted frames) MSE / PSNR / SSIM, repetition rate
    (last two predicted frames' tokens identical)."""
    import torch

    from worldmodels import metrics as M
    from worldmodels.train.rollout import rollout

    ds = task.dataset("test")
    n = min(cfg.clips, len(ds))
    if n == 0:
        raise ValueError("evaluation needs held-out clips but the test split is empty "
                         "(set eval.clips=0 to train without evaluation)")
    idx = torch.linspace(0, len(ds) - 1, n).round().long().unique().tolist()
    T = task.spec.future_frames

    @torch.no_grad()
    def fn(model) -> dict:
        gen = torch.Generator(device=device).manual_seed(cfg.seed)
        vals: dict[str, list] = {k: [] for k in ("mse", "psnr", "ssim", "mse_1", "psnr_1",
                                                  "ssim_1", "rep")}
        for s in range(0, len(idx), cfg.batch_size):
            batch = task.collate([ds[i] for i in idx[s:s + cfg.batch_size]])
            batch = task.repeat(batch, cfg.n_samples)
            out = rollout(model, task.rollout_request(batch).to(device), temperature=cfg.temperature,
                          generator=gen)
            ids = task.generated_frame_ids(out.completion_ids, T)  # (B,T,N)
            pred = task.decode_ids(ids, batch.get("ctx_ids")).float().cpu()  # (B,T,3,H,W)
            tgt = task.reward_items(batch)["target_frames"].float().cpu()
            for name, f in (("mse", M.mse), ("psnr", M.psnr), ("ssim", M.ssim)):
                vals[name].append(f(pred, tgt))
                vals[name + "_1"].append(f(pred[:, :1], tgt[:, :1]))
            if T >= 2:
                vals["rep"].append(M.repeats(ids.cpu()).float())
        res = {}
        for k, v in vals.items():
            if not v:
                continue
            x = torch.cat(v).view(-1, cfg.n_samples)  # (clips, n)
            name = {"rep": "repetition_rate"}.get(k, k)
            res[name] = float(x.mean())
            if cfg.n_samples > 1 and k != "rep":
                res[name + "_best"] = M.best_of_n(x, higher_is_better=k.startswith(("psnr", "ssim")))["mean"]
        return res

    return fn


def video_sample_hook(out_dir: Path, task, num_generations: int):
    """``hook(step, batch, predictions, rewards)``: saves ``samples/step_<n>.png`` with the
    first prompt's target frames (top row) and its ``num_generations`` sampled predictions
    (one row each, best reward first)."""

    def hook(step, batch, predictions, rewards):
        import imageio.v3 as iio
        import torch

        tgt = task.reward_items(batch)["target_frames"][0].float().cpu()  # (T,3,H,W)
        preds = predictions[:num_generations].float().cpu()  # (G,T,3,H,W)
        order = torch.argsort(torch.nan_to_num(rewards[:num_generations], nan=-1e9), descending=True)
        rows = torch.cat([tgt[None], preds[order]], 0)  # (G+1,T,3,H,W)
        grid = rows.permute(0, 3, 1, 4, 2).reshape(rows.shape[0] * rows.shape[3],
                                                   rows.shape[1] * rows.shape[4], 3)
        (out_dir / "samples").mkdir(parents=True, exist_ok=True)
        iio.imwrite(out_dir / "samples" / f"step_{step:06d}.png",
                    (grid.clamp(0, 1) * 255).round().byte().numpy())

    return hook


def world_model_saver(out: str | Path, task, extra: dict):
    """``on_save(model, step)`` that makes ``out`` a loadable world model (``worldmodel.json``
    with ``rlvr_step`` + the backbone), so every GRPO checkpoint is also a usable model."""
    from worldmodels.world_model import export_backbone, write_world_model_meta

    def save(model, step: int) -> None:
        write_world_model_meta(out, task, task.tokenizer_dir, extra={**extra, "rlvr_step": step})
        export_backbone(out, model)

    return save


def run_rlvr_video(cfg: RLVRVideoConfig, resume: bool = False, progress: bool = True,
                   reward=None) -> dict:
    """Build the reward (first, unless given), load the world model, run GRPO; returns the last
    logged metrics."""
    from worldmodels.config import save_config
    from worldmodels.rewards import build_reward

    if reward is None:  # fails fast: missing LPIPS weights, unknown names
        reward = build_reward(cfg.reward, cfg.aggregate, cfg.gamma, {"readout": cfg.readout})
    from worldmodels.train.distributed import cleanup, init_distributed
    from worldmodels.train.grpo import GRPOTrainer
    from worldmodels.world_model import VideoWorldModel, read_world_model_meta

    info = init_distributed(cfg.grpo.device)
    out = Path(cfg.out)
    from worldmodels.train.checkpoint import latest_checkpoint

    if not resume and latest_checkpoint(out) is not None:  # nothing is lost: never restart over a run
        raise FileExistsError(f"{out} already holds an RLVR run: pass --resume to continue it, "
                              f"or choose another --out")
    init_meta = read_world_model_meta(cfg.init)
    wm = VideoWorldModel.from_pretrained(cfg.init, device=str(info.device))
    task = wm.task
    task.data_root = cfg.data or init_meta.get("data_root")
    if task.data_root is None or not Path(task.data_root).is_dir():
        raise FileNotFoundError(f"episode folder {task.data_root!r} not found: pass --data "
                                f"(e.g. data/robot, built by `wm data build robot`)")
    task.cache_dir = cfg.cache_dir
    eval_fn = video_eval_fn(task, cfg.eval, info.device) if cfg.eval.clips else None
    extra = {"data_root": str(task.data_root), "init": str(cfg.init), "reward": cfg.reward, "readout": cfg.readout,
             "aggregate": cfg.aggregate}

    save_model = world_model_saver(out, task, extra)

    def on_save(model, step):
        if info.is_main:
            save_model(model, step)

    hook = video_sample_hook(out, task, cfg.grpo.num_generations) if cfg.grpo.sample_table_steps else None
    trainer = GRPOTrainer(cfg.grpo, task, wm.model, reward, out_dir=out, eval_fn=eval_fn,
                          on_save=on_save, sample_hook=hook)
    if info.is_main:
        save_config(cfg, out)
        print(f"RLVR: reward {reward!r}, init {cfg.init}, {len(trainer.dataset)} train clips, "
              f"{cfg.grpo.prompts_per_step} prompts x {cfg.grpo.num_generations} samples / step")
    if resume and not trainer.resume(out) and info.is_main:
        print(f"--resume: no checkpoint in {out}/checkpoints, starting from step 0")
    records = trainer.train(progress=progress)
    cleanup()
    return records[-1] if records else {}


@app.command("video")
def video(
    config: Path = typer.Option(None, "--config", help="YAML recipe, e.g. data/recipes/rlvr_tiny.yaml"),
    init: str = typer.Option(None, "--init", help="pretrained world model directory (init)"),
    reward: str = typer.Option(None, "--reward", help="reward spec: mae, lpips+mae, lpips:1,mae:0.5, readout_state+mae, pkg.mod:fn"),
    readout: str = typer.Option(None, "--readout", help="state-readout dir for --reward readout_state (readout)"),
    aggregate: str = typer.Option(None, "--aggregate", help="mean | last | discount (aggregate)"),
    out: str = typer.Option(None, "--out", help="output directory (out)"),
    data: str = typer.Option(None, "--data", help="episode folder (data); default: the world model's"),
    preset: str = typer.Option(None, "--preset", help=f"GRPO preset: {' | '.join(PRESETS)}"),
    steps: int = typer.Option(None, "--steps", help="GRPO steps (grpo.max_steps)"),
    set_: list[str] = typer.Option(None, "--set", help="dotted override, e.g. grpo.beta=0"),
    resume: bool = typer.Option(False, "--resume", help=resume_help(RESUME_MAY_CHANGE, {"grpo.max_steps": "--steps"})),
) -> None:
    """RLVR-train a video world model with GRPO on a verifiable frame reward."""
    from worldmodels.config import (
        CONFIG_FILENAME,
        ConfigError,
        load_config,
        parse_overrides,
        read_config_file,
        requested_values,
    )

    overrides = list(set_ or [])
    for key, val in (("init", init), ("reward", reward), ("readout", readout), ("aggregate", aggregate), ("out", out),
                     ("data", data), ("grpo.max_steps", steps)):
        if val is not None:
            overrides.append(f"{key}={val}")
    try:
        # what was asked for explicitly, in load_config's order: preset <- --config <- --set/flags
        # (a preset asks for the fields it sets, not for every GRPOConfig default)
        layers = ({"grpo": PRESETS[preset]} if preset and grpo_preset(preset) else None,
                  read_config_file(config) if config else None, parse_overrides(overrides))
        run_dir = requested_values(*layers).get("out") or RLVRVideoConfig.out
        if resume and (Path(run_dir) / CONFIG_FILENAME).is_file():
            cfg = resumed_config(RLVRVideoConfig, run_dir, *layers, may_change=RESUME_MAY_CHANGE)
        else:
            base = RLVRVideoConfig(grpo=grpo_preset(preset)) if preset else None
            cfg = load_config(RLVRVideoConfig, config, overrides, base=base)
    except (ConfigError, ValueError) as e:
        raise typer.BadParameter(str(e)) from e
    from worldmodels.rewards import build_reward

    try:  # before anything is loaded: missing LPIPS weights / unknown reward names stop here
        reward_fn = build_reward(cfg.reward, cfg.aggregate, cfg.gamma, {"readout": cfg.readout})
    except (ValueError, FileNotFoundError) as e:
        typer.echo(f"error: --reward {cfg.reward!r}: {e}", err=True)
        raise typer.Exit(code=2) from e
    try:
        last = run_rlvr_video(cfg, resume=resume, reward=reward_fn)
    except (FileNotFoundError, FileExistsError) as e:  # missing model / data, existing run: one line
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from e
    import os

    if os.environ.get("RANK", "0") != "0":  # torchrun: rank 0 reports
        return
    shown = {k: round(v, 5) for k, v in last.items() if isinstance(v, float) and
             (k.startswith("eval/") or k in ("reward", "kl"))}
    if not last:
        typer.echo(f"nothing to do: {cfg.out} already reached grpo.max_steps={cfg.grpo.max_steps} "
                   f"(pass --resume --steps N for more)")
        return
    typer.echo(f"done: step {last.get('step')} {shown} -> {cfg.out}")
