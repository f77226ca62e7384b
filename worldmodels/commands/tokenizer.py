"""`wm tokenizer`: train and evaluate video tokenizers (per-frame FSQ/VQ, compressive).

    wm tokenizer train --kind frame --data data/robot --out runs/tok_frame --preset tiny
    wm tokenizer train --kind compressive --data data/robot --out runs/tok_compressive \
        --init-context runs/tok_frame --steps 1500
    wm tokenizer train ... --resume                         # continue exactly where it stopped
    wm tokenizer train --out runs/tok_frame --resume --steps 4000   # ... with more steps
    wm tokenizer train --kind compressive --init runs/wm_skip6_act/tokenizer --data data/robot_poke2k \
        --set frame_skip=6 --set clip_len=8 --set train.motion_weight=20 --out runs/tok_skip6_motion
    wm tokenizer train ... --set train.lr=5e-4 --set model.fsq_levels=[7,5,5,5,5]
    wm tokenizer eval --tokenizer runs/tok_frame --data data/robot
    wm tokenizer eval --tokenizer runs/tok_compressive --data data/robot --compare runs/tok_frame
    wm tokenizer train --init runs/demo/tokenizer --data ../shared/data/robot/metaworld \
        --layout metaworld --held-out door-lock/20240515T053940_0_100 --out runs/tok_mw   # fine-tune
    wm tokenizer eval --tokenizer runs/tok_mw          # its data, key map and split are recorded

The model code lives in ``tokenizers_video`` (which knows nothing of ``worldmodels``); this
module wires in the episode data (the shared episode flags: ``commands/_episodes.py``; what a
run used is recorded in its config.yaml, and ``wm tokenizer eval`` / ``wm pretrain video``
default to it), the resolved-config file and the LPIPS metric. ``--resume``
continues with the settings recorded in ``<out>/config.yaml``; a differing flag, ``--set`` or
``--config`` value is an error naming the field and both values, except the step budget,
``--max-minutes`` and the logging knobs (``RESUME_MAY_CHANGE``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from worldmodels.commands._common import resume_help, resumed_config
from worldmodels.commands._episodes import episode_config, episode_options, episode_overrides
from worldmodels.config import ConfigError
from worldmodels.episode_config import EpisodeConfig

app = typer.Typer(help="train and evaluate video tokenizers (per-frame FSQ/VQ, compressive)",
                  no_args_is_help=True)

# What --resume may change: the step budget, the wall-clock limit, logging/saving/sample-image
# frequency and the progress bar -- never the model, data or what is optimised.
RESUME_MAY_CHANGE = ("train.steps", "train.max_minutes", "train.log_every", "train.save_every",
                     "train.image_every", "train.progress")


def _train_config_cls():
    from tokenizers_video.train import TrainConfig

    return TrainConfig


@dataclass
class TokenizerRunConfig:
    """One `wm tokenizer train` run (written to ``<out>/config.yaml``).

    Attributes:
        kind: "frame" (per-frame tokenizer) or "compressive" (context-conditioned).
        preset: model preset ("tiny" or "rt1"); ``model`` overrides its fields.
        data: folder of episode ``.npz`` files (or one file).
        out: run directory (the trained tokenizer, checkpoints, logs, sample grids);
            empty means ``runs/tok_<kind>``.
        episodes: EpisodeConfig: key map, split, crop/resize to the model's image_size
            (recorded resolved, so ``wm tokenizer eval`` and ``wm pretrain video`` reuse it).
        clip_len: compressive only: context + future frames per training clip window.
        frame_skip: compressive only: recorded steps between the window's frames. Set it to the
            world model's frame_skip: a tokenizer trained on 1-step futures has never seen
            how far things move in 6 steps, and its future tokens then lose what moved.
        future_per_clip: compressive only: future frames drawn from each window per item.
        init_context: compressive only: a trained frame-tokenizer directory whose weights
            initialise the context path (same channels / levels required).
        freeze_context: compressive only: keep the context path fixed (ids stay identical
            to the frame tokenizer's).
        init: a trained tokenizer directory of the same kind to fine-tune: its config replaces
            preset and model, its weights are the starting point (the optimizer starts fresh).
        perceptual: LPIPS backbone for the perceptual loss ("vgg", "alex", "squeeze") or
            "none"; missing backbone weights -> trains without it and says so.
        model: the resolved model config (preset fields + overrides).
        train: optimisation settings (tokenizers_video.TrainConfig).
    """

    LEGACY_KEYS = {"layout": "episodes.layout"}  # runs and recipes written before the section

    kind: str = "frame"
    preset: str = "tiny"
    data: str = "data/robot"
    out: str = ""
    episodes: EpisodeConfig = field(default_factory=EpisodeConfig)
    clip_len: int = 9
    frame_skip: int = 1
    future_per_clip: int = 2
    init_context: str | None = None
    freeze_context: bool = False
    init: str | None = None
    perceptual: str = "vgg"
    model: dict = field(default_factory=dict)
    train: Any = None

    def __post_init__(self) -> None:
        if self.kind not in ("frame", "compressive"):
            raise ConfigError(f"kind: expected 'frame' or 'compressive', got {self.kind!r}")
        if self.perceptual not in ("vgg", "alex", "squeeze", "none"):
            raise ConfigError(f"perceptual: expected vgg|alex|squeeze|none, got {self.perceptual!r}")
        if self.clip_len < 2 or not 1 <= self.future_per_clip < self.clip_len:
            raise ConfigError(f"need clip_len >= 2 and 1 <= future_per_clip < clip_len, got "
                              f"{self.clip_len}, {self.future_per_clip}")
        if self.frame_skip < 1:
            raise ConfigError(f"frame_skip: expected >= 1, got {self.frame_skip}")
        if self.init and self.init_context:
            raise ConfigError("init and init_context are exclusive: init loads every weight, "
                              "init_context only the context path")
        tc = _train_config_cls()
        if self.train is None:
            self.train = tc()
        elif isinstance(self.train, dict):
            from worldmodels.config import from_dict

            self.train = from_dict(tc, self.train, prefix="train.")


def _run_dir(cfg: TokenizerRunConfig) -> str:
    return cfg.out or f"runs/tok_{cfg.kind}"


def _recorded_run(config: Path | None, overrides: list[str]) -> TokenizerRunConfig | None:
    """With --resume: the run's recorded config (its resolved model included) with the
    explicitly requested values checked against it (exit 2 on a conflict); None when the run
    directory holds no config.yaml yet (a fresh start)."""
    from worldmodels.config import (
        CONFIG_FILENAME,
        parse_overrides,
        read_config_file,
        requested_values,
    )

    try:
        layers = (read_config_file(config) if config else None, parse_overrides(overrides))
        asked = requested_values(*layers)
    except ConfigError as e:
        raise typer.BadParameter(str(e)) from e
    run_dir = asked.get("out") or f"runs/tok_{asked.get('kind') or TokenizerRunConfig.kind}"
    if not (Path(run_dir) / CONFIG_FILENAME).is_file():
        return None
    return resumed_config(TokenizerRunConfig, run_dir, *layers, may_change=RESUME_MAY_CHANGE)


def _resolve(kind: str, preset: str, overrides: dict):
    """Preset model config updated with ``overrides`` (type-checked, unknown keys named)."""
    from tokenizers_video import (
        COMPRESSIVE_PRESETS,
        FRAME_PRESETS,
        CompressiveTokenizerConfig,
        FrameTokenizerConfig,
    )
    from worldmodels.config import from_dict, to_dict

    presets, cls = ((FRAME_PRESETS, FrameTokenizerConfig) if kind == "frame"
                    else (COMPRESSIVE_PRESETS, CompressiveTokenizerConfig))
    if preset not in presets:
        raise ConfigError(f"--preset {preset!r}: unknown for kind {kind!r}; known: {sorted(presets)}")
    data = to_dict(presets[preset])
    data.update(overrides)
    return from_dict(cls, data, prefix="model.")


def _frames(data: str, split: str, episodes: EpisodeConfig, image_size: int):
    from worldmodels.clips import FrameDataset

    files, steps = episodes.split(data, split)
    return FrameDataset(files, episodes.keymap(image_size), steps=steps,
                        frame_size=(image_size, image_size))


def _clips(data: str, split: str, episodes: EpisodeConfig, image_size: int, clip_len: int,
           frame_skip: int = 1, non_overlapping: bool = False):
    """Clip windows starting at every recorded step, or (held-out evaluation) sharing none."""
    from worldmodels.clips import ClipDataset

    (files, steps), keymap = episodes.split(data, split), episodes.keymap(image_size)
    kw = dict(keymap=keymap, require_actions=False, steps=steps, frame_size=(image_size, image_size))
    if non_overlapping:
        return ClipDataset.non_overlapping(files, clip_len, frame_skip, **kw)
    return ClipDataset(files, clip_len, stride=1, frame_skip=frame_skip, **kw)


def _refuse_restart(out: Path, resume: bool) -> None:
    """A fresh run into an --out that holds a tokenizer checkpoint would overwrite it (and its
    recorded config): one-line error, exit 2, before anything is written (as `wm pretrain`)."""
    from tokenizers_video.checkpoint import CHECKPOINT_DIR
    from worldmodels.pipelines import refuse_restart

    try:
        refuse_restart(out, resume, "a tokenizer run", has=(out / CHECKPOINT_DIR).is_dir())
    except FileExistsError as e:
        _fail(e)


def _fail(e: Exception) -> None:
    """A user error (data, files, settings): one line on stderr, exit status 2."""
    typer.echo(f"error: {e}", err=True)
    raise typer.Exit(code=2) from e


def _note_frames(ds, log) -> None:
    note = (getattr(ds, "clips", ds)).preprocessing()
    if note:
        log(f"frames: {note}")


def _perceptual(name: str, log):
    if name == "none":
        log("training without the perceptual term: perceptual=none")
        return None
    from worldmodels.metrics import LPIPSWeightsMissing, lpips_fn

    try:
        fn = lpips_fn(name)
    except LPIPSWeightsMissing as e:
        log(f"training without the perceptual term: {e}")
        return None
    return fn


@app.command("train")
@episode_options
def train_cmd(
    kind: str = typer.Option(None, help="frame | compressive  [default: frame]"),
    data: str = typer.Option(None, help="episode folder  [default: data/robot]"),
    out: str = typer.Option(None, help="run directory  [default: runs/tok_<kind>]"),
    preset: str = typer.Option(None, help="model preset: tiny (64) | 256 | rt1  [default: tiny]"),
    steps: int = typer.Option(None, help="train.steps"),
    batch_size: int = typer.Option(None, help="train.batch_size"),
    lr: float = typer.Option(None, help="train.lr"),
    max_minutes: float = typer.Option(None, help="train.max_minutes (stop early with a checkpoint)"),
    init_context: str = typer.Option(None, help="compressive: frame-tokenizer dir for the context path"),
    init: str = typer.Option(None, help="tokenizer dir to fine-tune (its config and weights), e.g. "
                             "the robot-pretrained runs/demo/tokenizer for a small foreign dataset"),
    config: Path = typer.Option(None, help="YAML recipe, e.g. data/recipes/tokenizer_frame_tiny.yaml"),
    set_: list[str] = typer.Option(None, "--set", help="dotted override, e.g. train.lr=5e-4"),
    resume: bool = typer.Option(False, help=resume_help(RESUME_MAY_CHANGE, {
        "train.steps": "--steps", "train.max_minutes": "--max-minutes"})),
    episodes: dict | None = None,
) -> None:
    """Train a tokenizer; writes <out>/{config.json, model.safetensors, checkpoint/, log.jsonl}."""
    import torch

    from tokenizers_video import CompressiveTokenizer, FrameTokenizer, train
    from tokenizers_video.data import ContextFutureDataset
    from worldmodels.config import load_config, save_config, to_dict

    flags = []  # only flags given on the command line override the recipe
    for name, val in (("kind", kind), ("data", data), ("preset", preset), ("out", out),
                      ("train.steps", steps), ("train.batch_size", batch_size), ("train.lr", lr),
                      ("train.max_minutes", max_minutes), ("init_context", init_context),
                      ("init", init)):
        if val is not None:
            flags.append(f"{name}={val}")
    flags += [f"{k}={v}" for k, v in episode_overrides(episodes, "episodes.").items()]
    recorded = _recorded_run(config, flags + list(set_ or [])) if resume else None
    try:
        cfg = recorded or load_config(TokenizerRunConfig, config, flags + list(set_ or []))
    except (ConfigError, ValueError) as e:
        raise typer.BadParameter(str(e)) from e
    if cfg.init and not recorded:  # its config (a resumed run recorded it); weights below
        from tokenizers_video import read_config

        init_model = read_config(cfg.init)
        init_kind = init_model.pop("kind")
        if init_kind != cfg.kind:
            raise typer.BadParameter(f"--init {cfg.init} is a {init_kind} tokenizer, not {cfg.kind} "
                                     f"(pass --kind {init_kind})")
        cfg = dataclasses.replace(cfg, model=init_model)
    mcfg = _resolve(cfg.kind, cfg.preset, cfg.model)
    used = EpisodeConfig(**cfg.episodes.resolved(mcfg.image_size))  # recorded as used
    cfg = dataclasses.replace(cfg, model=to_dict(mcfg), out=_run_dir(cfg), episodes=used)
    _refuse_restart(Path(cfg.out), resume)
    log = typer.echo
    torch.manual_seed(cfg.train.seed)  # model initialisation
    model = FrameTokenizer(mcfg) if cfg.kind == "frame" else CompressiveTokenizer(mcfg)
    if cfg.init and not resume:  # on resume the checkpoint's weights replace them anyway
        from tokenizers_video import load_tokenizer
        from tokenizers_video.pretrained import load_weights_strict

        load_weights_strict(model, load_tokenizer(cfg.init).state_dict(), f"--init {cfg.init}")
        log(f"fine-tuning {cfg.init}")
    from worldmodels.episodes import EpisodeError

    try:
        if cfg.kind == "frame":
            ds = _frames(cfg.data, "train", cfg.episodes, mcfg.image_size)
        else:
            ds = ContextFutureDataset(_clips(cfg.data, "train", cfg.episodes, mcfg.image_size,
                                             cfg.clip_len, cfg.frame_skip), cfg.future_per_clip)
    except (EpisodeError, FileNotFoundError) as e:
        _fail(e)
    _note_frames(ds, log)
    if cfg.kind == "compressive":
        if cfg.init_context and not resume:
            src = FrameTokenizer.from_pretrained(cfg.init_context)
            try:
                model.context.load_state_dict(src.state_dict())
            except RuntimeError as e:
                raise typer.BadParameter(f"--init-context {cfg.init_context}: its shape does not "
                                         f"match model.context_channels/fsq_levels ({e})") from e
            n = model.init_future_from_context()
            log(f"context path initialised from {cfg.init_context}; {n} future-path tensors "
                "warm-started from it")
        if cfg.freeze_context:
            model.context.requires_grad_(False)
    save_config(cfg, cfg.out)
    nparams = sum(p.numel() for p in model.parameters())
    log(f"{cfg.kind} tokenizer '{cfg.preset}': {nparams / 1e6:.2f}M params, vocab {model.vocab_size}, "
        f"{len(ds)} training items -> {cfg.out}")
    perceptual = _perceptual(cfg.perceptual, log)
    summary = train(model, ds, cfg.train, cfg.out, resume=resume, perceptual=perceptual, log=log)
    last = summary["last"] or {}
    log(f"done: step {summary['step']}, {summary['frames_per_s']:.1f} frames/s, "
        f"train L1 {last.get('l1', float('nan')):.4f}, train PSNR {last.get('psnr', float('nan')):.2f} dB")


@app.command("eval")
@episode_options
def eval_cmd(
    tokenizer: str = typer.Option(..., help="trained tokenizer directory"),
    data: str = typer.Option(None, help="episode folder  [default: the tokenizer run's, else data/robot]"),
    split: str = typer.Option("test", help="test | train | all"),
    clip_len: int = typer.Option(9, help="compressive: context + future frames per clip"),
    frame_skip: int = typer.Option(1, help="compressive: recorded steps between a clip's frames"),
    compare: str = typer.Option(None, help="compressive: also score this frame tokenizer on the same future frames"),
    batch_size: int = typer.Option(32, help="frames (or clips) per batch"),
    lpips: str = typer.Option("vgg", help="LPIPS backbone or none"),
    max_items: int = typer.Option(0, help="evaluate at most this many frames/clips (0: all)"),
    out: Path = typer.Option(None, help="JSON output (default <tokenizer>/eval_<split>.json)"),
    episodes: dict | None = None,
) -> None:
    """Held-out reconstruction MSE/PSNR/SSIM (+LPIPS), tokens per frame, usage, frames/s.

    The data folder, key map, split and crop/resize default to what the tokenizer's training
    run recorded (its config.yaml)."""
    import json

    import torch

    from tokenizers_video import load_tokenizer
    from tokenizers_video.evaluate import evaluate_compressive, evaluate_frame
    from worldmodels import metrics as M
    from worldmodels.episode_config import recorded_episodes
    from worldmodels.episodes import EpisodeError

    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        tok = load_tokenizer(tokenizer, device=device)
    except (FileNotFoundError, ValueError) as e:
        _fail(e)
    rec, rec_data = recorded_episodes(tokenizer)
    data = data or rec_data or "data/robot"
    ep = episode_config(episodes).merged(rec)
    fns = {"mse": M.mse, "mae": M.mae, "psnr": M.psnr, "ssim": M.ssim}
    if lpips != "none":
        try:
            fns["lpips"] = M.lpips_fn(lpips, device)
        except M.LPIPSWeightsMissing as e:
            typer.echo(f"evaluating without LPIPS: {e}", err=True)
    try:
        items = (_frames(data, split, ep, tok.image_size) if tok.kind != "compressive" else
                 _clips(data, split, ep, tok.image_size, clip_len, frame_skip, non_overlapping=True))
    except (EpisodeError, FileNotFoundError, ValueError) as e:
        _fail(e)
    _note_frames(items, typer.echo)
    if tok.kind != "compressive":
        res = evaluate_frame(tok, items, fns, batch_size, max_items)
        rows = [("frame", res)]
    else:
        from tokenizers_video import FrameTokenizer

        ref = FrameTokenizer.from_pretrained(compare, device=device) if compare else None
        clips = items
        res = evaluate_compressive(tok, clips, fns, max(1, batch_size // clip_len), max_items, ref)
        rows = [("context", {**res["context"], "tokens_per_frame": res["context_tokens"]}),
                ("future", {**res["future"], "tokens_per_frame": res["tokens_per_future_frame"]})]
        if ref is not None:
            rows.append((f"future via {compare}", res["frame_tokenizer_future"]))
        rows.append(("future = copy of context", {**res["copy_context"], "tokens_per_frame": 0}))
    res.update(tokenizer=str(tokenizer), data=str(data), split=split,
               episodes=ep.resolved(tok.image_size))
    target = out or Path(tokenizer) / f"eval_{split}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(res, indent=2) + "\n")
    names = list(fns) + (["changed_psnr"] if tok.kind == "compressive" else [])
    _print_table(rows, res["frames_per_s"], names)
    typer.echo(f"wrote {target}")


def _print_table(rows, fps: float, names: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"tokenizer reconstruction (encode+decode {fps:.1f} frames/s)")
    cols = [("tokens_per_frame", "tok/frame"), *[(n, n) for n in names],
            ("codebook_usage", "usage"), ("frames", "n")]
    table.add_column("scored")
    for _, head in cols:
        table.add_column(head, justify="right")
    for label, r in rows:
        table.add_row(label, *[_fmt(r.get(c)) for c, _ in cols])
    Console(width=max(100, Console().width)).print(table)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, int):
        return str(v)
    return f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}"
