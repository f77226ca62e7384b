"""Benchmark: rollout engine vs ``model.generate`` on the same batch, same process.

    from worldmodels.train.rollout_bench import run
    run("runs/bench_rollout", preset="tiny", batch=32, prompt_len=64, new_tokens=128, stop_answers=True)
    # (wired by the CLI as `wm bench rollout`; with --model the CLI reads the world model's
    #  sizes and passes them here as plain numbers)

Three measurements on the same random prompts and model:

- fixed length: both sample ``new_tokens`` tokens (temperature 1, full vocabulary, no stop);
  ``ratio`` = generate time / rollout time (> 1: the rollout engine is faster).
- text-like answers (``stop_answers``): greedy answers of mixed lengths that end at one of a
  few stop ids, both paths stopping early once every row has stopped (``generate`` with
  ``eos_token_id`` = the stop ids). The stop ids are the tokens the greedy answers emit at
  target lengths spread over [new_tokens/16, new_tokens/2] (answers shorter than the budget,
  as with text), so both paths produce the same tokens and do the same work
  (``stop_same_tokens`` checks it); ``stop_ratio`` as above, tokens/s count real answer tokens.
- interleaved: only the rollout engine supports it: generated stretches of ``segment_tokens``
  (restricted to ``allowed``) with ``forced_tokens`` given ids (drawn from ``forced_range``)
  between them.
- GRPO-like groups (``group`` G > 1): ``batch // G`` prompts, each repeated G times
  item-major (``task.repeat``), sampled at temperature 1 (GRPO's rollouts) with answers of
  mixed lengths: a fixed random set of stop ids (:func:`_group_stop_ids`), so answers end
  after ~``new_tokens``/4 tokens on average whoever draws them. Four paths alternate
  ``rounds`` times in this process (after one untimed round), every path of round r seeded
  with ``seed + r``: the engine (the request's ``group_size``, one prefill per prompt, its
  default ``inverse_cdf`` sampler); the engine with ``sampler="multinomial"``, which draws
  exactly ``generate``'s tokens (``group_same_tokens`` checks every round); that engine
  without its speed paths (plain prefill, dynamic cache, no compaction); ``model.generate``.
  ``group_ratio`` = the engine's answer tokens/s over generate's, each summed over the
  rounds (their draws differ, so their answer lengths differ round by round);
  ``group_same_draws_ratio`` / ``group_plain_ratio`` = the median of the per-round time
  ratios generate / engine on identical tokens.

Writes ``bench_rollout.json`` and ``bench_rollout.md`` into ``out_dir``.
"""

from __future__ import annotations

import dataclasses
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


def _stop_ids_for_mixed_lengths(free_ids, new_tokens: int) -> tuple[int, ...]:
    """Stop ids making greedy answers ``free_ids`` (B, new_tokens) end at mixed lengths: row r's
    token at a target length spread over [new_tokens/16, new_tokens/2] (rows may end earlier
    where a chosen id already occurs)."""
    B = free_ids.shape[0]
    lo, hi = max(1, new_tokens // 16), max(1, new_tokens // 2)
    targets = [lo + (hi - lo) * r // max(1, B - 1) for r in range(B)]
    return tuple(sorted({int(free_ids[r, t - 1]) for r, t in enumerate(targets)}))


def _load(backbone_dir, preset, vocab_size, max_len, attn_implementation):
    from worldmodels.models import build_backbone, load_backbone

    if backbone_dir:
        return load_backbone(backbone_dir, attn_implementation)
    return build_backbone(preset, vocab_size, max(2048, max_len), attn_implementation)


def run(out_dir: str | Path, backbone_dir: str | Path | None = None, preset: str = "tiny",
        vocab_size: int = 4635, batch: int = 32, prompt_len: int = 64, new_tokens: int = 128,
        segment_tokens: int = 64, forced_tokens: int = 2, allowed: tuple[int, int] | None = None,
        forced_range: tuple[int, int] | None = None, stop_answers: bool = True, repeats: int = 3,
        device: str = "auto", dtype: str = "auto", attn_implementation: str = "sdpa",
        seed: int = 0, group: int = 0, rounds: int = 5, decode=None) -> dict:
    """Time the paths above; returns and writes a dict with ``rollout_tok_s``,
    ``generate_tok_s``, ``ratio``, ``interact_tok_s`` and, with ``stop_answers``,
    ``stop_rollout_tok_s``, ``stop_generate_tok_s``, ``stop_ratio``, ``stop_lengths``
    (mean/min/max answer tokens) and ``stop_same_tokens``.

    With ``group`` > 1 also ``group_rollout_tok_s``, ``group_multinomial_tok_s``,
    ``group_plain_tok_s``, ``group_generate_tok_s``, ``group_ratio``, ``group_same_draws_ratio``,
    ``group_plain_ratio``, ``group_same_tokens`` and ``group_mean_answer`` (the GRPO-like line
    above).

    ``backbone_dir``: a saved causal LM (default: a fresh ``preset`` Llama with ``vocab_size``
    ids). ``allowed`` / ``forced_range``: [lo, hi) id ranges of the interleaved pattern
    (default: the whole vocabulary). ``decode``: the engine's
    :class:`~worldmodels.train.rollout_cache.DecodeConfig` (e.g. ``compile=True``). Raises
    ValueError on an unknown ``dtype`` or ``group`` > ``batch``.
    """
    import torch

    from worldmodels.train.distributed import pick_device
    from worldmodels.train.rollout import Segment, rollout

    dev = pick_device(device)
    dtypes = {"auto": torch.bfloat16 if dev.type == "cuda" else torch.float32,
              "fp32": torch.float32, "bf16": torch.bfloat16}
    if dtype not in dtypes:
        raise ValueError(f"dtype must be one of {sorted(dtypes)}, got {dtype!r}")
    dt = dtypes[dtype]
    if group > batch:
        raise ValueError(f"group {group} exceeds the batch {batch}")
    torch.manual_seed(seed)
    model = _load(backbone_dir, preset, vocab_size, prompt_len + new_tokens + 8, attn_implementation)
    model = model.to(dev, dt).eval()
    V = model.config.vocab_size
    prompt = torch.randint(0, V, (batch, prompt_len), device=dev)
    ones = torch.ones_like(prompt)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    gen = torch.Generator(device=dev).manual_seed(seed)

    def hf(**kw):
        with torch.no_grad():
            return model.generate(prompt, attention_mask=ones, max_new_tokens=new_tokens,
                                  pad_token_id=0, **kw)

    t_ours = _timed(lambda: rollout(model, prompt, [Segment("generate", new_tokens)], generator=gen,
                                    decode=decode), repeats, sync)
    t_hf = _timed(lambda: hf(do_sample=True, min_new_tokens=new_tokens, top_k=0, top_p=1.0,
                             temperature=1.0, eos_token_id=None), repeats, sync)
    res = {
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu",
        "threads": torch.get_num_threads(), "dtype": str(dt).replace("torch.", ""),
        "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2), "vocab": V,
        "batch": batch, "prompt_len": prompt_len, "new_tokens": new_tokens, "seed": seed,
        "rollout_tok_s": batch * new_tokens / t_ours, "generate_tok_s": batch * new_tokens / t_hf,
        "ratio": t_hf / t_ours,
    }
    if decode is not None:
        res["decode"] = dataclasses.asdict(decode)
    if stop_answers:
        res.update(_stop_bench(model, prompt, new_tokens, repeats, sync, hf, decode))
    if group > 1:
        res.update(_group_bench(model, prompt, new_tokens, group, rounds, sync, decode, seed))
    res.update(_interact_bench(model, prompt, new_tokens, segment_tokens, forced_tokens, allowed,
                               forced_range, repeats, sync, gen, decode))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_rollout.json").write_text(json.dumps(res, indent=1) + "\n")
    (out / "bench_rollout.md").write_text(_markdown(res))
    return res


def _stop_bench(model, prompt, new_tokens, repeats, sync, hf, decode=None) -> dict:
    from worldmodels.train.rollout import Segment, rollout

    free = rollout(model, prompt, [Segment("generate", new_tokens)], top_k=1).completion_ids
    stops = _stop_ids_for_mixed_lengths(free, new_tokens)
    seg = [Segment("generate", new_tokens, stop_ids=stops)]
    ours = rollout(model, prompt, seg, top_k=1, decode=decode)
    theirs = hf(do_sample=False, eos_token_id=list(stops))[:, prompt.shape[1]:]
    n = int(ours.lengths.sum())
    same = theirs.shape[1] == int(ours.lengths.max()) and bool(
        (theirs == ours.completion_ids[:, : theirs.shape[1]])[ours.loss_mask[:, : theirs.shape[1]]].all())
    t_ours = _timed(lambda: rollout(model, prompt, seg, top_k=1, decode=decode), repeats, sync)
    t_hf = _timed(lambda: hf(do_sample=False, eos_token_id=list(stops)), repeats, sync)
    lengths = ours.lengths.float()
    return {"stop_rollout_tok_s": n / t_ours, "stop_generate_tok_s": n / t_hf, "stop_ratio": t_hf / t_ours,
            "stop_ids": len(stops), "stop_same_tokens": same,
            "stop_lengths": {"mean": round(float(lengths.mean()), 1), "min": int(lengths.min()),
                             "max": int(lengths.max())},
            "stop_rows_stopped": int(ours.stopped.sum())}


def _group_stop_ids(vocab: int, new_tokens: int, seed: int) -> tuple[int, ...]:
    """A fixed random set of ``vocab * 4 // new_tokens`` ids (at least 1): on a near-uniform
    (random) model a sampled answer stops at each step with probability ~4 / new_tokens, so
    answers have mixed lengths (mean ~new_tokens / 4) whichever sampler draws them."""
    import torch

    k = min(vocab, max(1, vocab * 4 // new_tokens))
    g = torch.Generator().manual_seed(seed + 1)
    return tuple(sorted(torch.randperm(vocab, generator=g)[:k].tolist()))


def _group_bench(model, prompt, new_tokens, group, rounds, sync, decode, seed) -> dict:
    import statistics

    import torch

    from worldmodels.train.rollout import DecodeConfig, Segment, rollout, segment_masks

    n = prompt.shape[0] // group
    grouped = prompt[:n].repeat_interleave(group, 0)  # (n*G, P), item-major like task.repeat
    ones, P = torch.ones_like(grouped), grouped.shape[1]
    plain = DecodeConfig(share_prefill=False, cache="dynamic", compact=False)
    stops = _group_stop_ids(model.config.vocab_size, new_tokens, seed)
    seg = [Segment("generate", new_tokens, stop_ids=stops)]

    def ours(cfg=decode, sampler="inverse_cdf"):
        out = rollout(model, grouped, seg, group_size=group, decode=cfg, sampler=sampler)
        return out, int(out.lengths.sum())

    def theirs():
        with torch.no_grad():
            ids = model.generate(grouped, attention_mask=ones, max_new_tokens=new_tokens, do_sample=True,
                                 top_k=0, top_p=1.0, temperature=1.0, eos_token_id=list(stops),
                                 pad_token_id=0)[:, P:]
        return ids, int(segment_masks(ids, seg).sum())  # answer tokens: each row up to its stop

    paths = {"engine": ours, "engine_multinomial": lambda: ours(sampler="multinomial"),
             "plain": lambda: ours(plain, "multinomial"), "generate": theirs}
    times = {k: [] for k in paths}
    toks = {k: [] for k in paths}
    same = True
    for r in range(rounds + 1):  # round 0 warms up and is not timed
        drawn = {}
        for k, fn in paths.items():
            torch.manual_seed(seed + r)  # temperature-1 draws from the global RNG, as generate's
            sync()
            t = time.perf_counter()
            drawn[k], m = fn()
            sync()
            if r:
                times[k].append(time.perf_counter() - t)
                toks[k].append(m)
        mine, gen_ids = drawn["engine_multinomial"], drawn["generate"]
        T = gen_ids.shape[1]
        same = same and T == int(mine.lengths.max()) and bool(
            (gen_ids == mine.completion_ids[:, :T])[mine.loss_mask[:, :T]].all())
    tok_s = {k: sum(toks[k]) / sum(times[k]) for k in paths}
    med = {k: statistics.median(v) for k, v in times.items()}

    def same_draw_ratio(k):  # identical tokens each round: per-round time ratios, median
        return statistics.median(g / e for g, e in zip(times["generate"], times[k], strict=True))

    return {"group": group, "group_batch": n * group, "group_rounds": rounds, "group_stop_ids": len(stops),
            "group_rollout_tok_s": tok_s["engine"], "group_multinomial_tok_s": tok_s["engine_multinomial"],
            "group_plain_tok_s": tok_s["plain"], "group_generate_tok_s": tok_s["generate"],
            "group_ratio": tok_s["engine"] / tok_s["generate"],
            "group_same_draws_ratio": same_draw_ratio("engine_multinomial"),
            "group_plain_ratio": same_draw_ratio("plain"),
            "group_same_tokens": same,
            "group_mean_answer": {k: round(sum(toks[k]) / len(toks[k]) / (n * group), 1) for k in paths},
            "group_seconds": {k: round(v, 4) for k, v in med.items()}}


def _interact_bench(model, prompt, new_tokens, segment_tokens, forced_tokens, allowed,
                    forced_range, repeats, sync, gen, decode=None) -> dict:
    import torch

    from worldmodels.train.rollout import Segment, rollout

    B, dev, V = prompt.shape[0], prompt.device, model.config.vocab_size
    lo, hi = forced_range or (0, V)
    n_seg = max(1, (new_tokens + forced_tokens) // (segment_tokens + forced_tokens))
    segs = []
    for i in range(n_seg):
        segs.append(Segment("generate", segment_tokens, allowed=allowed))
        if i < n_seg - 1 and forced_tokens:
            segs.append(Segment("force", forced_tokens,
                                tokens=torch.randint(lo, hi, (B, forced_tokens), device=dev)))
    t = _timed(lambda: rollout(model, prompt, segs, generator=gen, decode=decode), repeats, sync)
    where = f"in [{allowed[0]}, {allowed[1]})" if allowed else "full vocabulary"
    return {"interact_tok_s": B * sum(s.length for s in segs) / t,
            "interact_pattern": f"{n_seg} x ({segment_tokens} generated, {where}) + "
                                f"{forced_tokens} forced between"}


def _markdown(res: dict) -> str:
    rows = [("rollout engine, fixed length", f"{res['rollout_tok_s']:.0f}"),
            ("model.generate, fixed length", f"{res['generate_tok_s']:.0f}"),
            ("ratio (generate time / rollout time)", f"{res['ratio']:.2f}")]
    if "stop_ratio" in res:
        ln = res["stop_lengths"]
        what = f"greedy answers with stop ids, {ln['min']}-{ln['max']} tokens (mean {ln['mean']})"
        rows += [(f"rollout engine, {what}", f"{res['stop_rollout_tok_s']:.0f}"),
                 (f"model.generate, {what}", f"{res['stop_generate_tok_s']:.0f}"),
                 ("ratio with stop ids", f"{res['stop_ratio']:.2f}"
                  + ("" if res["stop_same_tokens"] else " (tokens differ!)"))]
    if "group_ratio" in res:
        ln = res["group_mean_answer"]
        what = (f"{res['group_batch'] // res['group']} prompts x group {res['group']}, sampled (T=1), "
                f"{res['group_rounds']} rounds")
        rows += [(f"rollout engine, {what} (mean answer {ln['engine']})", f"{res['group_rollout_tok_s']:.0f}"),
                 ("rollout engine, `generate`'s draws (sampler multinomial)",
                  f"{res['group_multinomial_tok_s']:.0f}"),
                 ("rollout engine without its speed paths (multinomial, plain prefill, dynamic cache)",
                  f"{res['group_plain_tok_s']:.0f}"),
                 (f"model.generate (mean answer {ln['generate']})", f"{res['group_generate_tok_s']:.0f}"),
                 ("ratio, tokens/s engine / generate", f"{res['group_ratio']:.2f}"),
                 ("ratio with `generate`'s draws (same tokens; median per-round time ratio; plain "
                  f"engine {res['group_plain_ratio']:.2f})", f"{res['group_same_draws_ratio']:.2f}"
                  + ("" if res["group_same_tokens"] else " (tokens differ!)"))]
    rows.append((f"rollout, interleaved ({res['interact_pattern']})", f"{res['interact_tok_s']:.0f}"))
    body = "".join(f"| {a} | {b} |\n" for a, b in rows)
    return (f"| path | tokens/s |\n|---|---|\n{body}\n{res['device']}, {res['threads']} threads, "
            f"{res['dtype']}, {res['params_M']}M params, batch {res['batch']}, prompt "
            f"{res['prompt_len']}, at most {res['new_tokens']} new tokens.\n")
