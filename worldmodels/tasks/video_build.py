"""Building the video task a pretraining run trains on (``VideoTask.for_pretrain``).

Three cases, in this order:
- resuming a run: the run's own recorded layout and action ranges (``<out>/worldmodel.json``);
- ``--init`` (continued pretraining, fine-tuning on a foreign dataset): the init's layout and
  action ranges (refitted to this data when its actions have another number of dimensions, or
  always with ``action_ranges: data``); the tokenizer must be the init's, or one with the same
  token layout when ``init_new_tokenizer`` is set;
- a fresh run: ``cfg.layout`` and action ranges fitted to the training split's actions.

The episodes section's null fields come from what the tokenizer run recorded (its config.yaml),
so ``wm tokenizer train --layout metaworld`` need not be repeated for ``wm pretrain video``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml


def same_tokenizer(a: Path, b: Path) -> bool:
    """Same config and weights (byte for byte) in two tokenizer directories."""
    def content(d: Path, name: str) -> bytes | None:
        return (d / name).read_bytes() if (d / name).is_file() else None

    return all(content(a, f) == content(b, f) for f in ("config.json", "model.safetensors"))


def check_same_token_layout(old: dict, new: dict, init: str, tok_dir: Path) -> None:
    """Raise unless a backbone trained on layout ``old`` can read sequences of layout ``new``."""
    keys = ("vocab_size", "visual_vocab", "frame_tokens", "context_tokens")
    diff = {k: (old.get(k), new.get(k)) for k in keys if old.get(k) != new.get(k)}
    if diff:
        raise ValueError(f"task.init_new_tokenizer: task.tokenizer={tok_dir} does not fit init={init}'s "
                         f"backbone: " + ", ".join(f"{k} {a} (init) vs {b}" for k, (a, b) in diff.items()))


def tokenizer_frame_skip(tok_dir: Path) -> int | None:
    """The frame_skip a tokenizer was trained with (its run's config.yaml), None if unrecorded."""
    p = Path(tok_dir) / "config.yaml"
    if not p.is_file():
        return None
    try:
        rec = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"{p}: not valid YAML ({e})") from e
    skip = rec.get("frame_skip") if isinstance(rec, dict) else None
    return int(skip) if isinstance(skip, int) else None


def check_frame_skip(task, tok_dir: Path, enabled: bool) -> None:
    """A compressive tokenizer must have been trained on futures as far apart as the model's."""
    if not enabled or not task.compressive:
        return
    trained = tokenizer_frame_skip(tok_dir)
    if trained is not None and trained != task.frame_skip:
        raise ValueError(
            f"task.tokenizer={tok_dir} was trained with frame_skip {trained} (its config.yaml), the "
            f"world model uses layout.frame_skip {task.frame_skip}: a compressive tokenizer that "
            f"never saw futures that far apart may erase what moves. Fine-tune it with "
            f"`wm tokenizer train --init {tok_dir} --set frame_skip={task.frame_skip} ...`, or pass "
            f"--set task.check_tokenizer_frame_skip=false to train anyway")


def build_pretrain_task(cfg, init: str | None = None, resume_dir: str | Path | None = None,
                        device="cpu"):
    """The VideoTask for ``cfg`` (a ``VideoTaskConfig``); see the module docstring."""
    from worldmodels.episode_config import recorded_episodes
    from worldmodels.meta import WM_FILE, read_world_model_meta
    from worldmodels.tasks.video import VideoTask
    from worldmodels.tasks.video_data import ActionCodec, load_video_tokenizer

    tok_dir = Path(cfg.tokenizer)
    if not (tok_dir / "config.json").is_file():
        raise FileNotFoundError(f"task.tokenizer={tok_dir}: no tokenizer there (train one with "
                                f"`wm tokenizer train --kind frame`)")
    tok = load_video_tokenizer(tok_dir, device=device)
    episodes = cfg.episodes.merged(recorded_episodes(tok_dir)[0])
    _check_headers(cfg.root, episodes, tok)
    common = dict(data_root=cfg.root, tokenizer_dir=str(tok_dir), cache_dir=cfg.cache_dir,
                  episodes=episodes)
    if resume_dir is not None and (Path(resume_dir) / WM_FILE).is_file():
        meta = read_world_model_meta(resume_dir)  # keep the run's saved action ranges / layout
        task = VideoTask(tok, *_spec_codec(meta), pad_id=meta["layout"].get("pad_id"), **common)
    elif init:
        meta = read_world_model_meta(init)
        init_tok = Path(init) / meta.get("tokenizer", "tokenizer")
        spec, codec = _spec_codec(meta)
        spec = layout_overrides(spec, cfg.layout, init)
        codec = _init_codec(codec, cfg, episodes, init)
        task = VideoTask(tok, spec, codec, pad_id=meta["layout"].get("pad_id"), **common)
        if not same_tokenizer(init_tok, tok_dir):
            if not cfg.init_new_tokenizer:
                raise ValueError(f"init={init} was trained with another tokenizer than "
                                 f"task.tokenizer={tok_dir}; pass --tokenizer {init_tok}, or "
                                 f"--set task.init_new_tokenizer=true to retrain it on this one")
            check_same_token_layout(meta["layout"], task.layout(), init, tok_dir)
    else:
        acts = train_actions(cfg.root, episodes)
        task = VideoTask(tok, cfg.layout, ActionCodec.fit(acts), **common)
    check_frame_skip(task, tok_dir, cfg.check_tokenizer_frame_skip)
    return task


def _check_headers(root, episodes, tok) -> None:
    """Every training file's headers against the key map (cheap: no pixels), so a wrong layout
    stops before anything is fitted or built, with the flag to pass."""
    from worldmodels.episodes import check_episodes

    if not Path(root).exists():
        raise FileNotFoundError(f"episode folder {str(root)!r} not found: pass --data")
    files, _ = episodes.split(root, "train")
    check_episodes(files, episodes.keymap(getattr(tok, "image_size", None)))


def train_actions(root, episodes) -> np.ndarray:
    """Every action of the training split, (N,A) float32 (only the action arrays are read)."""
    from worldmodels.episodes import EpisodeError

    files, steps = episodes.split(root, "train")
    key, out = episodes.keymap().action_key, []
    for f in files:
        try:
            with np.load(f, allow_pickle=False) as z:
                if key is None or key not in z.files:
                    raise EpisodeError(f"{f}: no actions (no array {key!r}; has {sorted(z.files)}), "
                                       f"but a world model needs them; pass --action-key NAME")
                a = np.asarray(z[key], np.float32)
        except (OSError, ValueError) as e:
            if isinstance(e, EpisodeError):
                raise
            raise EpisodeError(f"{f}: cannot read '{key}' ({type(e).__name__}: {e})") from e
        a = a.reshape(a.shape[0], -1)
        out.append(a if steps is None else a[steps])
    acts = np.concatenate(out, 0)
    if not len(acts) or not np.isfinite(acts).all():
        raise EpisodeError(f"{root}: the training split's '{key}' arrays are empty or hold NaN/inf")
    return acts


def _init_codec(codec, cfg, episodes, init: str):
    """The init's action codec, or one fitted to this data (``cfg.action_ranges``)."""
    import sys

    from worldmodels.tasks.video_data import ActionCodec

    if cfg.action_ranges == "init":
        return codec
    acts = train_actions(cfg.root, episodes)
    if cfg.action_ranges == "auto" and acts.shape[1] == codec.dim:
        return codec
    if cfg.action_ranges == "auto":
        print(f"note: init={init} has {codec.dim}-dim actions, {cfg.root} has {acts.shape[1]}: "
              f"action ranges fitted to this data (task.action_ranges)", file=sys.stderr)
    return ActionCodec.fit(acts)


def layout_overrides(spec, layout, init: str):
    """The init's layout ``spec`` with the fields that ``layout`` (the run's ``task.layout``) sets
    to other values than ``VideoSpec``'s defaults, each named in a note (a field left at its
    default keeps the init's value)."""
    from dataclasses import asdict, replace

    from worldmodels.tasks.video_spec import VideoSpec

    default, own, ask = asdict(VideoSpec()), asdict(spec), asdict(layout)
    changes = {k: v for k, v in ask.items() if v != default[k] and v != own[k]}
    for k, v in changes.items():
        print(f"note: task.layout.{k}={v} overrides init={init}'s {own[k]}")
    return replace(spec, **changes) if changes else spec


def _spec_codec(meta: dict):
    from worldmodels.tasks.video_data import ActionCodec
    from worldmodels.tasks.video_spec import VideoSpec

    lay = meta["layout"]
    return (VideoSpec(**lay["spec"]),
            ActionCodec(lay["actions"]["low"], lay["actions"]["high"], lay["actions"]["bins"]))
