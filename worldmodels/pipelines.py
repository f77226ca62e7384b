"""The two training pipelines every modality shares: MLE pretraining and RLVR post-training.

    from worldmodels.pipelines import run_pretrain, run_rlvr
    run_pretrain(PretrainVideoConfig(out="runs/wm", task=VideoTaskConfig(root="data/robot")))
    run_rlvr(RLVRVideoConfig(init="runs/wm", reward="mae", out="runs/rlvr"), resume=False)

A config has a ``task:`` section whose class names its task (``task_name``, a key of
``worldmodels.tasks.TASKS``); everything else (backbone, MLE, GRPO, evaluation) is the same for
every modality. ``wm pretrain <modality>`` and ``wm rlvr <modality>`` are thin commands over
these functions. Both write a world-model directory (``worldmodel.json`` + ``backbone/`` + the
task's assets) that is refreshed at every checkpoint, plus ``checkpoints/``, ``metrics.jsonl``
and the resolved ``config.yaml``; both continue exactly with ``resume=True`` and refuse to
start over an existing run without it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from worldmodels.evaluate import EvalConfig
from worldmodels.models.config import BackboneConfig, LoRAConfig
from worldmodels.train.grpo_config import GRPOConfig
from worldmodels.train.mle_config import MLEConfig


@dataclass
class PretrainConfig:
    """MLE pretraining of a world model (``wm pretrain <modality>``).

    out: run / world-model directory.
    init: null, or a world-model directory to continue from (continued pretraining, e.g. on
        more data): its backbone weights and its task layout; the optimizer and schedule start
        fresh (``train.steps`` more steps). ``model`` is then only used for ``model.lora``.
    task: the modality's section (what the model is trained on; e.g. VideoTaskConfig).
    model: BackboneConfig (family, preset or path, LoRA).
    train: MLEConfig (steps, batch, optimizer, checkpoints, logging).
    """

    out: str = "runs/wm"
    init: str | None = None
    task: Any = None
    model: BackboneConfig = field(default_factory=BackboneConfig)
    train: MLEConfig = field(default_factory=MLEConfig)


@dataclass
class RLVRConfig:
    """RLVR post-training of a world model with GRPO (``wm rlvr <modality>``).

    init: the world model to post-train (a ``wm pretrain`` or ``wm rlvr`` output directory).
    out: output run / world-model directory.
    reward: reward spec: a registered name, a combination (lpips+mae, lpips:1,mae:0.5) or a
        dotted path pkg.module:function (``worldmodels/rewards.py``).
    reward_options: options for model-backed rewards, e.g. {readout: runs/readout}.
    aggregate: multi-step aggregation of per-step rewards: mean | last | discount.
    gamma: discount of ``aggregate: discount``.
    task: the modality's overrides of the model's recorded task (e.g. another data folder).
    lora: LoRAConfig: post-train LoRA adapters on the frozen init (off unless ``lora.enabled``);
        the KL reference is then the init itself (the adapter disabled), with no second copy.
        The adapter's initial values are drawn with ``grpo.seed`` (same seed, same run).
    grpo: GRPOConfig (the GRPO knobs, TRL names).
    eval: EvalConfig (held-out metrics every ``grpo.eval_steps``; ``eval.items: 0`` disables).
    """

    init: str = "runs/wm"
    out: str = "runs/rlvr"
    reward: str = "mae"
    reward_options: dict[str, str] = field(default_factory=dict)
    aggregate: str = "mean"
    gamma: float = 0.9
    task: Any = None
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        if self.aggregate not in ("mean", "last", "discount"):
            raise ValueError(f"aggregate must be mean|last|discount, got {self.aggregate!r}")
        if not 0 < self.gamma <= 1:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")
        if not self.init or not self.out:
            raise ValueError("init and out must be set")


def _task_class(section):
    from worldmodels.tasks import get_task_class

    name = getattr(section, "task_name", None)
    if name is None:
        raise ValueError(f"the config's task section {type(section).__name__} names no task "
                         f"(a 'task_name' class attribute)")
    return get_task_class(name)


def refuse_restart(out: Path, resume: bool, what: str, has: bool | None = None) -> bool:
    """True when ``out`` holds a checkpoint (``has``; default: a trainer checkpoint under
    ``out/checkpoints``); FileExistsError naming --resume when it does and ``resume`` is off."""
    from worldmodels.train.checkpoint import latest_checkpoint

    has = latest_checkpoint(out) is not None if has is None else has
    if has and not resume:
        raise FileExistsError(f"{out} already holds {what}: pass --resume to continue it, or "
                              f"choose another --out")
    return has


def run_pretrain(cfg: PretrainConfig, resume: bool = False) -> dict:
    """Build the task and backbone of ``cfg`` and train with MLE; returns the final metrics."""
    import torch

    from worldmodels.config import save_config
    from worldmodels.models import count_params, load_backbone, make_backbone
    from worldmodels.train.distributed import cleanup, init_distributed
    from worldmodels.train.mle import train_mle
    from worldmodels.world_model import export_backbone, write_world_model_meta

    info = init_distributed(cfg.train.device)
    out = Path(cfg.out)
    has_checkpoint = refuse_restart(out, resume, "a training run")
    if resume and cfg.init and has_checkpoint and info.is_main:
        print(f"note: --resume continues the checkpoint in {out}; the weights of init={cfg.init} "
              f"are replaced by the checkpoint's", file=sys.stderr)
    task = _task_class(cfg.task).for_pretrain(cfg.task, init=cfg.init,
                                              resume_dir=out if resume else None, device=info.device)
    torch.manual_seed(cfg.train.seed)
    if cfg.init:
        from worldmodels.world_model import read_world_model_meta

        init_dir = Path(cfg.init) / read_world_model_meta(cfg.init).get("backbone", "backbone")
        model = load_backbone(init_dir, cfg.model.attn_implementation)
        if cfg.model.lora.enabled:
            from worldmodels.models import lora

            model = lora.apply_lora(model, cfg.model.lora)
    else:
        model = make_backbone(cfg.model, task.vocab_size)
    limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if task.max_length() and limit and task.max_length() > limit:
        raise ValueError(f"sequence length {task.max_length()} exceeds the backbone's "
                         f"max_position_embeddings {limit} (model.max_positions)")
    merge, base = cfg.model.lora.merge_on_export, cfg.model.path
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        save_config(replace(cfg, task=task.config_section(cfg.task)), out)  # the layout actually trained
        write_world_model_meta(out, task, extra={"init": str(cfg.init)} if cfg.init else None)
        print(f"world model: {count_params(model) / 1e6:.2f}M params, vocab {task.vocab_size}, "
              f"sequence {task.max_length()} tokens, task {task.name}")
    train_set = task.lm_dataset("train")
    eval_set = task.lm_dataset("test")
    if info.is_main:
        print(f"items: {len(train_set)} train, {len(eval_set)} held-out")
    result = train_mle(model, task, cfg.train, out, info=info, resume=resume,
                       export=lambda m, step: export_backbone(out, m, merge=merge, base=base),
                       train_set=train_set, eval_set=eval_set)
    cleanup()
    return result


def run_rlvr(cfg: RLVRConfig, resume: bool = False, progress: bool = True, reward=None) -> dict:
    """Build the reward (first, unless given: a missing weight file stops here), load the world
    model, run GRPO; returns the last logged metrics ({} when nothing was left to run)."""
    from worldmodels.config import save_config
    from worldmodels.rewards import build_reward

    if reward is None:
        reward = build_reward(cfg.reward, cfg.aggregate, cfg.gamma, dict(cfg.reward_options))
    from worldmodels.evaluate import eval_fn
    from worldmodels.train.distributed import cleanup, init_distributed
    from worldmodels.train.grpo import GRPOTrainer
    from worldmodels.world_model import WorldModel, export_backbone, write_world_model_meta

    info = init_distributed(cfg.grpo.device)
    out = Path(cfg.out)
    refuse_restart(out, resume, "an RLVR run")
    overrides = cfg.task.task_kwargs() if cfg.task is not None else {}
    wm = WorldModel.from_pretrained(cfg.init, device=str(info.device), **overrides)
    task, model = wm.task, wm.model
    base_dir = Path(cfg.init) / wm.meta.get("backbone", "backbone")
    if cfg.lora.enabled:
        import torch

        from worldmodels.models import lora

        torch.manual_seed(cfg.grpo.seed)  # the adapter's initial values: same seed, same run
        model = lora.apply_lora(model, cfg.lora)
    held_out = eval_fn(task, cfg.eval, info.device) if cfg.eval.items else None

    extra = {"init": str(cfg.init), "reward": cfg.reward, "aggregate": cfg.aggregate,
             **({"reward_options": dict(cfg.reward_options)} if cfg.reward_options else {})}

    def on_save(m, step):
        if info.is_main:
            write_world_model_meta(out, task, extra={**extra, "rlvr_step": step})
            export_backbone(out, m, merge=cfg.lora.merge_on_export, base=base_dir)

    def hook(step, batch, predictions, rewards):
        task.save_samples(out, step, batch, predictions, rewards, cfg.grpo.num_generations)

    trainer = GRPOTrainer(cfg.grpo, task, model, reward, out_dir=out, eval_fn=held_out,
                          on_save=on_save, sample_hook=hook if cfg.grpo.sample_table_steps else None)
    if info.is_main:
        save_config(cfg, out)
        print(f"RLVR: reward {reward!r}, init {cfg.init}, {len(trainer.dataset)} train items, "
              f"{cfg.grpo.prompts_per_step} prompts x {cfg.grpo.num_generations} samples / step")
    if resume and not trainer.resume(out) and info.is_main:
        print(f"--resume: no checkpoint in {out}/checkpoints, starting from step 0")
    records = trainer.train(progress=progress)
    cleanup()
    return records[-1] if records else {}
