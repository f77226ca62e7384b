"""`wm import`: world models trained elsewhere, written as our world-model directory.

    wm import rlvr-world --tokenizer ckpt/rt1-frame-tokenizer --transformer ckpt/rt1-world-model \\
        --actions rt1_action_ranges.json --layout single --out runs/rlvr_world_rt1
    wm eval video --model runs/rlvr_world_rt1 --data data/rt1 --future 2
    wm rlvr video --init runs/rlvr_world_rt1 --data data/rt1 --reward lpips+mae --out runs/rt1_rlvr

RLVR-World (Wu et al., NeurIPS 2025) / iVideoGPT checkpoints: their per-frame tokenizer
(``CNNFSQModel256``, a diffusers directory: config.json + diffusion_pytorch_model.safetensors),
their transformer (a plain HF ``LlamaForCausalLM`` directory, e.g. ``llama_small.json``: vocab
4633 = 4,375 visual + 256 action bins + BOS 4631 + EOS 4632, no PAD) and their per-dimension
action [min, max] ranges. The written model keeps their token ids and sequences exactly:
single-step ``[f0 a0][f1 a1][f2 a2][f3 a3] BOS f4 EOS`` (4 context frames), multi-step
``[d1 a1] ... [d7 a7] d8`` (d1 given); rollouts pad with their EOS (the backbone has no PAD row;
pads are masked, never attended to). Their multi-step model (``ctx_llama_small``, vocab 9008)
needs their compressive tokenizer, which is not read yet: it is refused with a clear error.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import typer

app = typer.Typer(help="import world models trained elsewhere (`wm import rlvr-world`)",
                  no_args_is_help=True)

#: files of an HF model directory that make up the backbone (tokenizer files are their dummies)
BACKBONE_FILES = ("config.json", "generation_config.json", "model.safetensors",
                  "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


@app.callback()
def _group() -> None:
    """Import world models trained elsewhere."""


@dataclass
class RLVRWorldImportConfig:
    """What ``wm import rlvr-world`` reads and writes.

    tokenizer: their per-frame tokenizer directory (``CNNFSQModel256``: config.json +
        diffusion_pytorch_model.safetensors, as their code saves it).
    transformer: their transformer directory (config.json + model.safetensors of an HF causal
        LM, e.g. their ``LlamaForCausalLM``); its vocabulary must be exactly the tokenizer's
        codes + 256 action bins + BOS + EOS.
    actions: their per-dimension action ranges: JSON ``{"ranges": [[min, max], ...]}``,
        ``{"low": [...], "high": [...]}`` or ``[[min, max], ...]``; or a torch file (.pt/.pth,
        e.g. their frac_action_ranges.pth) holding an (A, 2) or (2, A) tensor.
    out: the world-model directory to write (must not hold one unless ``overwrite``).
    layout: "single" (their single-step model) or "multi" (interleaved multi-step).
    context_frames: frames given as context (null: 4 for single, 1 for multi, as theirs).
    future_frames: multi: frames predicted per rollout (null: 7, their d2..d8); single: 1.
    frame_skip: recorded frames per model step in the data it will read (theirs: 1).
    data: episode folder recorded as the model's default data (null: pass --data later).
    overwrite: replace an existing world model in ``out``.
    """

    tokenizer: str = ""
    transformer: str = ""
    actions: str = ""
    out: str = ""
    layout: str = "single"
    context_frames: int | None = None
    future_frames: int | None = None
    frame_skip: int = 1
    data: str | None = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        for name in ("tokenizer", "transformer", "actions", "out"):
            if not getattr(self, name):
                raise ValueError(f"--{name} is required")
        if self.layout not in ("single", "multi"):
            raise ValueError(f"--layout must be single or multi, got {self.layout!r}")
        if self.context_frames is None:
            self.context_frames = 4 if self.layout == "single" else 1
        if self.future_frames is None:
            self.future_frames = 1 if self.layout == "single" else 7
        if self.layout == "single" and self.future_frames != 1:
            raise ValueError("--future-frames: the single-step layout predicts one frame")
        if min(self.context_frames, self.future_frames, self.frame_skip) < 1:
            raise ValueError("--context-frames, --future-frames and --frame-skip must be >= 1")


def read_action_ranges(path: str | Path):
    """An ``ActionCodec`` (256 bins) from an action-ranges file (formats: see
    ``RLVRWorldImportConfig.actions``). ValueError naming the file for anything else."""
    import numpy as np

    from worldmodels.tasks.video_data import ActionCodec

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"--actions {p}: no such file")
    if p.suffix in (".pt", ".pth"):
        import torch

        try:
            obj = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as e:  # not a torch file, or one that needs pickled code
            raise ValueError(f"--actions {p}: not readable with torch.load(weights_only=True) ({e})") from e
    else:
        try:
            obj = json.loads(p.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"--actions {p}: not valid JSON ({e})") from e
    if isinstance(obj, dict) and "low" in obj and "high" in obj:
        arr = np.stack([np.asarray(obj["low"], np.float64), np.asarray(obj["high"], np.float64)], 1)
    else:
        arr = obj.get("ranges") if isinstance(obj, dict) else obj
        try:
            arr = np.asarray(arr.numpy() if hasattr(arr, "numpy") else arr, np.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(f"--actions {p}: expected [[min, max], ...] per action dimension ({e})") from e
    if arr.ndim == 2 and arr.shape[0] == 2 and arr.shape[1] != 2:
        arr = arr.T  # (2, A): a row of minima and a row of maxima
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 1:
        raise ValueError(f"--actions {p}: expected (A, 2) [min, max] pairs, got shape {arr.shape}")
    bad = [i for i, (lo, hi) in enumerate(arr) if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi)]
    if bad:
        raise ValueError(f"--actions {p}: dimension(s) {bad} are not finite min <= max: "
                         f"{arr[bad].tolist()}")
    return ActionCodec(arr[:, 0], arr[:, 1])


def _check_transformer(d: Path, task) -> dict:
    """Their transformer's config.json against the task's token layout; its parsed config."""
    cfg_file = d / "config.json"
    if not cfg_file.is_file():
        raise FileNotFoundError(f"--transformer {d}: no config.json (expected an HF causal-LM "
                                f"directory: config.json + model.safetensors)")
    try:
        cfg = json.loads(cfg_file.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{cfg_file}: not valid JSON ({e})") from e
    vocab, need = cfg.get("vocab_size"), task.eos_id + 1
    if vocab != need:
        hint = (" -- a multi-step RLVR-World model (ctx_llama_small, vocab 9008) reads the ids of "
                "their compressive tokenizer (CompressiveVQModelFSQ), which is not imported yet"
                if isinstance(vocab, int) and vocab > need else "")
        raise ValueError(f"{cfg_file}: vocab_size {vocab}, but the tokenizer's layout has {need} ids "
                         f"({task.visual_vocab} visual + 256 action bins + BOS {task.bos_id} + EOS "
                         f"{task.eos_id}){hint}")
    for key, want in (("bos_token_id", task.bos_id), ("eos_token_id", task.eos_id)):
        if cfg.get(key) is not None and cfg[key] != want:
            raise ValueError(f"{cfg_file}: {key} {cfg[key]}, expected {want} (RLVR-World's layout)")
    limit = cfg.get("max_position_embeddings")
    if isinstance(limit, int) and task.seq_len() > limit:
        raise ValueError(f"{cfg_file}: max_position_embeddings {limit} < the layout's sequence of "
                         f"{task.seq_len()} tokens")
    return cfg


def _copy_backbone(src: Path, dst: Path) -> list[str]:
    """Copy the model files of ``src`` (symlinks followed, as their merged checkpoints use)."""
    dst.mkdir(parents=True)
    names = [n for n in BACKBONE_FILES if (src / n).is_file()]
    index = [src / n for n in names if n.endswith(".index.json")]
    for idx in index:  # sharded weights: every file the index names
        names += sorted(set(json.loads(idx.read_text()).get("weight_map", {}).values()))
    for n in dict.fromkeys(names):
        shutil.copyfile(src / n, dst / n)
    return names


def import_rlvr_world(cfg: RLVRWorldImportConfig) -> dict:
    """Write ``cfg.out`` (worldmodel.json + backbone/ + tokenizer/) from RLVR-World checkpoints;
    returns a summary. The transformer is loaded once (strictly: a missing or misshaped weight is
    an error naming the file) before anything is written; the directory is assembled aside and
    renamed into place. Raises FileNotFoundError / ValueError / WeightsMismatch naming the file."""
    from tokenizers_video.rlvr_world import RLVRWorldTokenizer
    from worldmodels.meta import WM_FILE
    from worldmodels.models import load_backbone
    from worldmodels.tasks.video import VideoTask
    from worldmodels.tasks.video_spec import VideoSpec
    from worldmodels.world_model import write_world_model_meta

    out, src = Path(cfg.out), Path(cfg.transformer)
    if out.exists() and any(out.iterdir()) and not cfg.overwrite:
        what = "a world model" if (out / WM_FILE).is_file() else "files"
        raise FileExistsError(f"--out {out} already holds {what}; choose another --out or pass --overwrite")
    tok = RLVRWorldTokenizer.from_pretrained(cfg.tokenizer)
    codec = read_action_ranges(cfg.actions)
    spec = VideoSpec(cfg.layout, cfg.context_frames, cfg.future_frames, frame_skip=cfg.frame_skip)
    probe = VideoTask(tok, spec, codec)
    task = VideoTask(tok, spec, codec, data_root=cfg.data, tokenizer_dir=str(cfg.tokenizer),
                     pad_id=probe.eos_id)  # their vocabulary has no PAD: pad with EOS
    tcfg = _check_transformer(src, task)
    model = load_backbone(src)  # strict: every weight present and of the config's shape
    rows = model.get_input_embeddings().weight.shape[0]
    if rows != task.vocab_size:
        raise ValueError(f"--transformer {src}: its embedding has {rows} rows, config.json says "
                         f"vocab_size {tcfg.get('vocab_size')}")
    del model
    tmp = out.parent / f".{out.name}.importing"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        files = _copy_backbone(src, tmp / "backbone")
        write_world_model_meta(tmp, task, extra={"imported_from": {
            "format": "rlvr-world", "tokenizer": str(cfg.tokenizer), "transformer": str(src),
            "actions": str(cfg.actions), "backbone_files": files}})
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"out": str(out), "visual_vocab": task.visual_vocab, "vocab_size": task.vocab_size,
            "bos_id": task.bos_id, "eos_id": task.eos_id, "pad_id": task.pad_id,
            "tokens_per_frame": task.frame_tokens, "image_size": tok.image_size,
            "action_dim": codec.dim, "layout": cfg.layout, "sequence_tokens": task.seq_len(),
            "model_type": tcfg.get("model_type")}


@app.command("rlvr-world")
def rlvr_world(
    tokenizer: str = typer.Option(..., "--tokenizer", help="their CNNFSQModel256 tokenizer directory"),
    transformer: str = typer.Option(..., "--transformer", help="their transformer directory (HF LlamaForCausalLM)"),
    actions: str = typer.Option(..., "--actions", help="per-dimension action min/max ranges (.json or .pth)"),
    out: str = typer.Option(..., "--out", help="world-model directory to write"),
    layout: str = typer.Option("single", "--layout", help="single | multi"),
    context_frames: int = typer.Option(None, "--context-frames", help="default: 4 (single), 1 (multi)"),
    future_frames: int = typer.Option(None, "--future-frames", help="multi: default 7"),
    frame_skip: int = typer.Option(1, "--frame-skip", help="recorded frames per model step"),
    data: str = typer.Option(None, "--data", help="episode folder recorded as the default data"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace a world model in --out"),
) -> None:
    """Write an RLVR-World / iVideoGPT checkpoint as our world model (their token ids and
    layout), ready for `wm eval video`, `wm rlvr video`, planning and Real2Sim."""
    from tokenizers_video.pretrained import WeightsMismatch
    from worldmodels.strict_load import WeightsMismatch as BackboneMismatch

    try:
        cfg = RLVRWorldImportConfig(tokenizer, transformer, actions, out, layout, context_frames,
                                    future_frames, frame_skip, data, overwrite)
        res = import_rlvr_world(cfg)
    except (FileNotFoundError, FileExistsError, ValueError, WeightsMismatch, BackboneMismatch) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from e
    typer.echo(f"wrote {res['out']}: {res['layout']}-step layout, {res['sequence_tokens']} tokens per "
               f"sequence; vocab {res['vocab_size']} = {res['visual_vocab']} visual + 256 action bins "
               f"+ BOS {res['bos_id']} + EOS {res['eos_id']} (pads with {res['pad_id']}); "
               f"{res['tokens_per_frame']} tokens per {res['image_size']}x{res['image_size']} frame; "
               f"{res['action_dim']} action dims")
