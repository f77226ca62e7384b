"""`wm pretrain`: MLE pretraining of world models.

    wm pretrain video --config data/recipes/pretrain_tiny.yaml --out runs/wm_video
    wm pretrain video --data data/robot --tokenizer runs/tok_frame --set train.steps=4000
    wm pretrain video --out runs/wm_video --resume                 # continue exactly
    wm pretrain video --out runs/wm_video --resume --steps 8000    # ... up to more steps
    wm pretrain video --init runs/wm_video --data data/robot_more --tokenizer runs/wm_video/tokenizer \
        --out runs/wm_video_more --steps 2000                       # continued pretraining
    wm pretrain video --init runs/wm_skip6_act --tokenizer runs/tok_skip6_motion --data data/robot_poke2k \
        --set init_new_tokenizer=true --out runs/wm_skip6_motion     # ... with a fine-tuned tokenizer
    torchrun --nproc_per_node 2 -m worldmodels.cli pretrain video --config ...   # DDP

The output directory is a world model (``worldmodel.json`` + ``backbone/`` + ``tokenizer/``),
refreshed at every checkpoint, plus ``checkpoints/``, ``metrics.jsonl`` and ``config.yaml``.
``--resume`` continues with the settings recorded in ``<out>/config.yaml``: a flag, ``--set`` or
``--config`` value that differs from them is an error naming the field and both values, except
the step budget, ``train.max_minutes`` and the logging/eval/save knobs (``RESUME_MAY_CHANGE``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import typer

from worldmodels.commands._common import resume_help, resumed_config
from worldmodels.tasks.video_spec import VideoSpec
from worldmodels.train.mle_config import MLEConfig

app = typer.Typer(help="MLE pretraining of world models (`wm pretrain video`).", no_args_is_help=True)

# What --resume may change: the step budget, the wall-clock limit and how often it logs,
# evaluates, saves and how many checkpoints it keeps -- never what is optimised or measured.
RESUME_MAY_CHANGE = ("train.steps", "train.max_minutes", "train.log_every", "train.eval_every",
                     "train.save_every", "train.keep_checkpoints")


@app.callback()
def _group() -> None:
    """MLE pretraining of world models."""


@dataclass
class VideoDataConfig:
    """Where the video data and tokenizer are.

    root: folder of episode .npz files with meta.json (e.g. data/robot).
    tokenizer: a trained video tokenizer directory (e.g. runs/tok_frame).
    layout: sequence layout (mode single|multi, context_frames, future_frames, stride).
    cache_dir: where pre-tokenised ids are cached (null: <root>/.token_cache).
    """

    root: str = "data/robot"
    tokenizer: str = "runs/tok_frame"
    layout: VideoSpec = field(default_factory=VideoSpec)
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if not self.root or not self.tokenizer:
            raise ValueError("data.root and data.tokenizer must be set")


@dataclass
class BackboneConfig:
    """The causal LM.

    preset: backbone size: test | tiny | small (see worldmodels/models).
    attn_implementation: "sdpa" (default), "eager", or "wm_triton" (our Triton kernel, CUDA only;
        falls back to sdpa when unavailable).
    max_positions: maximum sequence length the model supports.
    """

    preset: str = "tiny"
    attn_implementation: str = "sdpa"
    max_positions: int = 2048

    def __post_init__(self) -> None:
        from worldmodels.models import PRESETS

        if self.preset not in PRESETS:
            raise ValueError(f"model.preset must be one of {sorted(PRESETS)}, got {self.preset!r}")


@dataclass
class PretrainVideoConfig:
    """`wm pretrain video`.

    out: run / world-model directory.
    init: null, or a world-model directory to start from (continued pretraining, e.g. on more
        data): its backbone weights and its action codec / layout; the model preset is then the
        init's, and data.tokenizer must be the tokenizer the init was trained with. The
        optimizer and schedule start fresh (``train.steps`` more steps).
    init_new_tokenizer: with init, accept a data.tokenizer other than the init's if its token
        layout is the same (vocabulary, context and per-frame token counts), e.g. the init's
        tokenizer fine-tuned with its context path frozen: the backbone then re-learns what
        the changed ids mean instead of starting from scratch. The new tokenizer is saved
        with the model.
    data: VideoDataConfig.
    model: BackboneConfig.
    train: MLEConfig (steps, batch, optimizer, checkpoints, logging).
    """

    out: str = "runs/wm_video"
    init: str | None = None
    init_new_tokenizer: bool = False
    data: VideoDataConfig = field(default_factory=VideoDataConfig)
    model: BackboneConfig = field(default_factory=BackboneConfig)
    train: MLEConfig = field(default_factory=MLEConfig)


def _same_tokenizer(a: Path, b: Path) -> bool:
    """Same config and weights (byte for byte) in two tokenizer directories."""
    def content(d: Path, name: str) -> bytes | None:
        return (d / name).read_bytes() if (d / name).is_file() else None

    return all(content(a, f) == content(b, f) for f in ("config.json", "model.safetensors"))


def _check_same_token_layout(old: dict, new: dict, init: str, tok_dir: Path) -> None:
    """Raise unless a backbone trained on layout ``old`` can read sequences of layout ``new``."""
    keys = ("vocab_size", "visual_vocab", "frame_tokens", "context_tokens")
    diff = {k: (old.get(k), new.get(k)) for k in keys if old.get(k) != new.get(k)}
    if diff:
        raise ValueError(f"init_new_tokenizer: data.tokenizer={tok_dir} does not fit init={init}'s "
                         f"backbone: " + ", ".join(f"{k} {a} (init) vs {b}" for k, (a, b) in diff.items()))


def run_pretrain_video(cfg: PretrainVideoConfig, resume: bool = False) -> dict:
    """Build task + backbone from ``cfg`` and train; returns the final metrics."""
    import numpy as np
    import torch

    from worldmodels.clips import ClipDataset
    from worldmodels.config import save_config
    from worldmodels.episodes import dataset_split
    from worldmodels.models import build_backbone, count_params
    from worldmodels.tasks.video import VideoTask
    from worldmodels.tasks.video_data import ActionCodec
    from worldmodels.train.distributed import cleanup, init_distributed
    from worldmodels.train.mle import train_mle
    from worldmodels.world_model import (
        export_backbone,
        load_video_tokenizer,
        read_world_model_meta,
        task_from_meta,
        write_world_model_meta,
    )

    info = init_distributed(cfg.train.device)
    out = Path(cfg.out)
    has_checkpoint = (out / "checkpoints").is_dir() and any((out / "checkpoints").iterdir())
    if not resume and has_checkpoint:
        raise FileExistsError(f"{out} already holds a training run: pass --resume to continue it, "
                              f"or choose another --out")
    if resume and cfg.init and has_checkpoint and info.is_main:
        # The checkpoint's weights overwrite the init's, so --init only shapes a fresh run.
        print(f"note: --resume continues the checkpoint in {out}; the weights of "
              f"init={cfg.init} are replaced by the checkpoint's", file=sys.stderr)
    tok_dir = Path(cfg.data.tokenizer)
    if not (tok_dir / "config.json").is_file():
        raise FileNotFoundError(f"data.tokenizer={tok_dir}: no tokenizer there (train one with "
                                f"`wm tokenizer train frame`)")
    tok = load_video_tokenizer(tok_dir, device=info.device)
    common = dict(data_root=cfg.data.root, tokenizer_dir=str(tok_dir), cache_dir=cfg.data.cache_dir)
    if resume and (out / "worldmodel.json").is_file():  # keep the saved action ranges / layout
        task = task_from_meta(read_world_model_meta(out), tok, **common)
    elif cfg.init:  # continued pretraining: the init's codec and layout, checked tokenizer
        init_meta = read_world_model_meta(cfg.init)
        init_tok = Path(cfg.init) / init_meta.get("tokenizer", "tokenizer")
        task = task_from_meta(init_meta, tok, **common)
        if not _same_tokenizer(init_tok, tok_dir):
            if not cfg.init_new_tokenizer:
                raise ValueError(f"init={cfg.init} was trained with another tokenizer than "
                                 f"data.tokenizer={tok_dir}; pass --tokenizer {init_tok}, or "
                                 f"--set init_new_tokenizer=true to retrain it on this one")
            _check_same_token_layout(init_meta["layout"], task.layout(), cfg.init, tok_dir)
    else:
        train_files = dataset_split(cfg.data.root, "train")
        acts = ClipDataset(train_files, 1, stride=1).all_actions()
        task = VideoTask(tok, cfg.data.layout, ActionCodec.fit(np.asarray(acts, np.float32)), **common)
    if task.seq_len() > cfg.model.max_positions:
        raise ValueError(f"sequence length {task.seq_len()} exceeds model.max_positions "
                         f"{cfg.model.max_positions}")
    torch.manual_seed(cfg.train.seed)
    if cfg.init:
        from worldmodels.models import load_backbone

        model = load_backbone(Path(cfg.init) / "backbone", cfg.model.attn_implementation)
    else:
        model = build_backbone(cfg.model.preset, task.vocab_size, cfg.model.max_positions,
                               cfg.model.attn_implementation)
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        # the saved config shows the layout actually trained (an init's, not data.layout's default)
        save_config(replace(cfg, data=replace(cfg.data, layout=task.spec)), out)
        write_world_model_meta(out, task, tok_dir, extra={"data_root": str(cfg.data.root),
                                                          **({"init": str(cfg.init)} if cfg.init else {})})
        print(f"world model: {count_params(model) / 1e6:.2f}M params, vocab {task.vocab_size}, "
              f"sequence {task.seq_len()} tokens, layout {task.spec}")
    train_set = task.dataset("train", with_frames=False, progress=info.is_main)
    eval_set = task.dataset("test", with_frames=False, progress=info.is_main)
    if info.is_main:
        print(f"clips: {len(train_set)} train, {len(eval_set)} held-out")
    result = train_mle(model, task, cfg.train, out, info=info, resume=resume,
                       export=lambda m, step: export_backbone(out, m),
                       train_set=train_set, eval_set=eval_set)
    cleanup()
    return result


@app.command("video")
def video(
    config: Path = typer.Option(None, "--config", help="YAML recipe, e.g. data/recipes/pretrain_tiny.yaml"),
    data: str = typer.Option(None, "--data", help="episode folder (data.root)"),
    tokenizer: str = typer.Option(None, "--tokenizer", help="tokenizer directory (data.tokenizer)"),
    out: str = typer.Option(None, "--out", help="run / world-model directory (out)"),
    init: str = typer.Option(None, "--init", help="world model to continue pretraining from (init)"),
    preset: str = typer.Option(None, "--preset", help="backbone preset (model.preset)"),
    steps: int = typer.Option(None, "--steps", help="optimizer steps (train.steps)"),
    set_: list[str] = typer.Option(None, "--set", help="dotted override, e.g. train.optim.lr=3e-4"),
    resume: bool = typer.Option(False, "--resume", help=resume_help(RESUME_MAY_CHANGE, {"train.steps": "--steps"})),
) -> None:
    """Pretrain a video world model with MLE (next-token loss on frame tokens)."""
    from worldmodels.config import (
        CONFIG_FILENAME,
        ConfigError,
        load_config,
        parse_overrides,
        read_config_file,
        requested_values,
    )

    overrides = list(set_ or [])
    for key, val in (("data.root", data), ("data.tokenizer", tokenizer), ("out", out), ("init", init),
                     ("model.preset", preset), ("train.steps", steps)):
        if val is not None:
            overrides.append(f"{key}={val}")
    try:
        layers = (read_config_file(config) if config else None, parse_overrides(overrides))
        run_dir = requested_values(*layers).get("out") or PretrainVideoConfig.out
        if resume and (Path(run_dir) / CONFIG_FILENAME).is_file():
            cfg = resumed_config(PretrainVideoConfig, run_dir, *layers, may_change=RESUME_MAY_CHANGE)
        else:
            cfg = load_config(PretrainVideoConfig, config, overrides)
    except (ConfigError, ValueError) as e:
        raise typer.BadParameter(str(e)) from e
    try:
        res = run_pretrain_video(cfg, resume=resume)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from e
    typer.echo(f"done: step {res.get('step')} loss {res.get('loss', float('nan')):.4f} "
               f"eval_loss {res.get('eval_loss', float('nan')):.4f} -> {cfg.out}")
