"""Benchmark: rollout engine tokens/s vs ``model.generate`` on the same batch, same process.

    from worldmodels.train.rollout_bench import run
    run("runs/bench_rollout", preset="tiny", batch=32, prompt_len=64, new_tokens=128)
    # (wired by the CLI as `wm bench rollout`)

Both sample ``new_tokens`` tokens (temperature 1, full vocabulary, no early stop) after the
same random prompts with the same model; the ratio is rollout / generate tokens/s. A second
line times the "interact" pattern only the rollout engine supports (frames of ``frame_tokens``
visual tokens with ``action_tokens`` forced between them, vocab-masked).
Writes ``bench_rollout.json`` and ``bench_rollout.md`` into ``out_dir``.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path


def _timed(fn, repeats: int, sync) -> float:
    fn()  # warm-up
    sync()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t)
    return best


def run(out_dir: str | Path, model_dir: str | None = None, preset: str = "tiny",
        vocab_size: int = 4635, batch: int = 32, prompt_len: int = 64, new_tokens: int = 128,
        frame_tokens: int = 64, action_tokens: int = 2, repeats: int = 3, device: str = "auto",
        dtype: str = "auto", attn_implementation: str = "sdpa", seed: int = 0) -> dict:
    """Time both paths; returns and writes {"rollout_tok_s", "generate_tok_s", "ratio", ...}."""
    import torch

    from worldmodels.models import build_backbone, load_backbone
    from worldmodels.train.distributed import pick_device
    from worldmodels.train.rollout import Segment, rollout

    dev = pick_device(device)
    dt = {"auto": torch.bfloat16 if dev.type == "cuda" else torch.float32, "fp32": torch.float32,
          "bf16": torch.bfloat16}[dtype]
    torch.manual_seed(seed)
    if model_dir:
        from worldmodels.world_model import read_world_model_meta

        meta = read_world_model_meta(model_dir)
        model = load_backbone(Path(model_dir) / meta["backbone"], attn_implementation)
        lay = meta["layout"]
        skip = lay["spec"].get("frame_skip", 1)
        frame_tokens, action_tokens = lay["frame_tokens"], skip * len(lay["actions"]["low"])
        vis = lay["visual_vocab"]
    else:
        model = build_backbone(preset, vocab_size, max(2048, prompt_len + new_tokens + 8),
                               attn_implementation)
        vis = vocab_size - 259
    model = model.to(dev, dt).eval()
    V = model.config.vocab_size
    prompt = torch.randint(0, V, (batch, prompt_len), device=dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    gen = torch.Generator(device=dev).manual_seed(seed)

    def ours():
        rollout(model, prompt, [Segment("generate", new_tokens)], generator=gen)

    def hf():
        with torch.no_grad():
            model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=True,
                           max_new_tokens=new_tokens, min_new_tokens=new_tokens, top_k=0,
                           top_p=1.0, temperature=1.0, pad_token_id=0, eos_token_id=None)

    t_ours = _timed(ours, repeats, sync)
    t_hf = _timed(hf, repeats, sync)
    n_frames = max(1, (new_tokens + action_tokens) // (frame_tokens + action_tokens))
    segs = []
    for i in range(n_frames):
        segs.append(Segment("generate", frame_tokens, allowed=(0, vis)))
        if i < n_frames - 1:
            segs.append(Segment("force", action_tokens,
                                tokens=torch.randint(vis, vis + 256, (batch, action_tokens), device=dev)))
    t_int = _timed(lambda: rollout(model, prompt, segs, generator=gen), repeats, sync)
    n_int = sum(s.length for s in segs)
    res = {
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu",
        "threads": torch.get_num_threads(), "dtype": str(dt).replace("torch.", ""),
        "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2), "vocab": V,
        "batch": batch, "prompt_len": prompt_len, "new_tokens": new_tokens,
        "rollout_tok_s": batch * new_tokens / t_ours, "generate_tok_s": batch * new_tokens / t_hf,
        "ratio": t_hf / t_ours,
        "interact_tok_s": batch * n_int / t_int, "interact_pattern":
            f"{n_frames} x ({frame_tokens} generated, vocab-masked) + {action_tokens} forced between",
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_rollout.json").write_text(json.dumps(res, indent=1) + "\n")
    (out / "bench_rollout.md").write_text(
        "| path | tokens/s |\n|---|---|\n"
        f"| rollout engine | {res['rollout_tok_s']:.0f} |\n"
        f"| model.generate | {res['generate_tok_s']:.0f} |\n"
        f"| ratio (rollout / generate) | {res['ratio']:.2f} |\n"
        f"| rollout, interact ({res['interact_pattern']}) | {res['interact_tok_s']:.0f} |\n\n"
        f"{res['device']}, {res['threads']} threads, {res['dtype']}, {res['params_M']}M params, "
        f"batch {batch}, prompt {prompt_len}, {new_tokens} new tokens.\n")
    return res
