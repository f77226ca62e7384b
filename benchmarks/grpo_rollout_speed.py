"""GRPO step time with the rollout engine vs with ``model.generate`` (same trainer, same process).

    .venv/bin/python benchmarks/grpo_rollout_speed.py --out runs/bench_grpo            # synthetic text task
    .venv/bin/python benchmarks/grpo_rollout_speed.py --model runs/text_game/pilot_init  # a text world model

One ``GRPOTrainer`` (group 5, 8 prompts per step, one mini-batch, k3 KL against a frozen copy:
the text-game tiny recipe's shape) runs whole steps alternately with two rollout functions:

- ``engine``: :func:`worldmodels.train.rollout.rollout` as GRPO calls it (the request's
  ``group_size`` = 5: one prefill per prompt, static cache, stopped rows compacted), with
  ``--sampler`` (default ``multinomial``: ``generate``'s draws, so both paths sample the same
  answers; ``inverse_cdf``, the engine's own default, draws other answers of the same
  distribution);
- ``generate``: ``model.generate`` (temperature 1, the segment's stop ids as EOS, the same
  batch of repeated prompts) followed by one forward for the rollout log-probs GRPO needs
  (``sequence_logprobs``), as TRL-style trainers do. It samples from the global RNG set to
  the state of the engine's generator, so both draw the same answers (equal work;
  ``mean_answer_tokens`` shows it).

Everything after the rollout (rewards, reference log-probs, the update) is the same code. The
learning rate is tiny so the policy, hence the answer lengths, barely move between rounds.
Reported: median step time and median rollout time of each, and the medians of the per-round
ratios generate / engine. The synthetic task: prompts of 96-152 random tokens (left-padded),
answers of at most 96 tokens ending at any of ``--stop-ids`` ids (a random tiny model then
stops at geometric, mixed lengths, mean about V / stop-ids tokens), reward = share of even
answer ids. Writes ``grpo_rollout_speed.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from worldmodels.tasks.base import RolloutRequest, Segment, Task  # noqa: E402
from worldmodels.train import grpo as grpo_mod  # noqa: E402
from worldmodels.train.rollout import RolloutOutput, completion_attention_mask, sequence_logprobs  # noqa: E402


class SyntheticTextTask(Task):
    """Random prompts of mixed lengths; one generate segment with stop ids."""

    name = "synthetic_text"

    def __init__(self, vocab: int, n: int = 64, max_new: int = 96, stop_ids: int = 40, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.vocab_size, self.max_new = vocab, max_new
        self.prompts = [torch.randint(0, vocab, (int(torch.randint(96, 153, (1,), generator=g)),), generator=g)
                        for _ in range(n)]
        self.stop_ids = tuple(range(vocab - stop_ids, vocab))

    def dataset(self, split):
        return [{"prompt": p} for p in self.prompts]

    def collate(self, items):
        P = max(len(it["prompt"]) for it in items)
        ids = torch.zeros(len(items), P, dtype=torch.long)
        mask = torch.zeros(len(items), P, dtype=torch.bool)
        for i, it in enumerate(items):
            n = len(it["prompt"])
            ids[i, P - n:], mask[i, P - n:] = it["prompt"], True
        return {"prompt_ids": ids, "prompt_mask": mask}

    def rollout_request(self, batch):
        return RolloutRequest(batch["prompt_ids"], [Segment("generate", self.max_new, stop_ids=self.stop_ids)],
                              batch["prompt_mask"])

    def decode(self, batch, output):
        return output

    def reward_items(self, batch):
        return {}


def synthetic_reward(predictions, items, **_):
    even = (predictions.completion_ids % 2 == 0).float()
    share = (even * predictions.loss_mask).sum(1) / predictions.loss_mask.sum(1).clamp(min=1)
    return share.double(), {"even_share": share.double()}


def generate_rollout(model, req, temperature=1.0, top_k=None, top_p=None, generator=None, **_):
    """The ``generate`` baseline of the GRPO rollout: one generate segment with stop ids, then
    one forward for the log-probs. Returns a RolloutOutput like the engine's."""
    (seg,) = req.segments
    if seg.kind != "generate":
        raise ValueError("the generate baseline handles one generate segment")
    ids, P, L = req.prompt_ids, req.prompt_ids.shape[1], seg.length
    extra = {}
    if seg.allowed is not None:  # the engine's vocab mask: ids outside [lo, hi) get -inf
        lo, hi = seg.allowed
        extra["suppress_tokens"] = [*range(lo), *range(hi, model.config.vocab_size)]
    pmask = req.prompt_mask.long() if req.prompt_mask is not None else torch.ones_like(ids)
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        if generator is not None and ids.device.type == "cpu":  # draw what the engine draws
            torch.set_rng_state(generator.get_state())
        out = model.generate(ids, attention_mask=pmask, max_new_tokens=L, do_sample=True,
                             temperature=temperature, top_k=top_k or 0, top_p=top_p or 1.0,
                             eos_token_id=list(seg.stop_ids), pad_token_id=req.pad_id, **extra)
    comp = torch.full((ids.shape[0], L), req.pad_id, dtype=torch.long, device=ids.device)
    comp[:, : out.shape[1] - P] = out[:, P:]
    real = completion_attention_mask(comp, req.segments)
    comp = torch.where(real, comp, torch.full_like(comp, req.pad_id))
    am = torch.cat([pmask, real.long()], 1)
    seq = torch.cat([ids, comp], 1)
    with torch.no_grad():
        lp = sequence_logprobs(model, seq, P, req.segments, temperature, attention_mask=am)
    stopped = torch.isin(comp, torch.tensor(seg.stop_ids, device=comp.device)).any(1)
    return RolloutOutput(seq, comp, lp.float(), real, stopped, real.sum(1), am)


def _load(args):
    if args.model:
        from worldmodels.rewards import build_reward
        from worldmodels.world_model import WorldModel

        wm = WorldModel.from_pretrained(args.model, device="cpu")
        return wm.task, wm.model.float(), build_reward(args.reward)
    from worldmodels.models.llama import build_backbone

    torch.manual_seed(args.seed)
    return (SyntheticTextTask(args.vocab, max_new=args.max_new, stop_ids=args.stop_ids),
            build_backbone("tiny", args.vocab, 1024), synthetic_reward)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="runs/bench_grpo")
    ap.add_argument("--model", default=None, help="a text world-model directory (default: synthetic task)")
    ap.add_argument("--reward", default="task_specific", help="reward spec with --model")
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--max-new", type=int, default=96)
    ap.add_argument("--stop-ids", type=int, default=40)
    ap.add_argument("--group", type=int, default=5)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sampler", default="multinomial", choices=["multinomial", "inverse_cdf"],
                    help="the engine's token sampler (multinomial: the same answers as generate)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from worldmodels.train.grpo import GRPOTrainer
    from worldmodels.train.grpo_config import GRPOConfig

    task, model, reward = _load(args)
    cfg = GRPOConfig(num_generations=args.group, prompts_per_step=args.prompts,
                     mini_batch_prompts=args.prompts, learning_rate=1e-9, beta=0.001, max_steps=10**6,
                     device="cpu", eval_steps=0, save_steps=0, seed=args.seed)
    trainer = GRPOTrainer(cfg, task, model, reward)
    engine = grpo_mod.rollout
    paths = {"engine": functools.partial(engine, sampler=args.sampler), "generate": generate_rollout}
    roll_t: dict[str, float] = {}

    def timed(fn, name):
        def wrapped(*a, **k):
            t = time.perf_counter()
            out = fn(*a, **k)
            roll_t[name] = roll_t.get(name, 0.0) + time.perf_counter() - t
            return out
        return wrapped

    steps = {k: [] for k in paths}
    rolls = {k: [] for k in paths}
    lengths = {k: [] for k in paths}
    for r in range(args.rounds + 1):  # round 0 warms up
        for name, fn in paths.items():
            roll_t.clear()
            grpo_mod.rollout = timed(fn, name)
            trainer.step = r  # both paths see the same prompts in a round
            t = time.perf_counter()
            m = trainer.train_step()
            dt = time.perf_counter() - t
            if r:
                steps[name].append(dt)
                rolls[name].append(roll_t[name])
                lengths[name].append(m["completions/mean_length"])
    grpo_mod.rollout = engine
    ratio = lambda xs: statistics.median(g / e for g, e in zip(xs["generate"], xs["engine"], strict=True))  # noqa: E731
    res = {"model": args.model or f"tiny Llama, vocab {args.vocab}, synthetic prompts 96-152 tokens",
           "group": args.group, "prompts": args.prompts, "sampler": args.sampler, "rows": args.group * args.prompts,
           "rounds": args.rounds, "threads": torch.get_num_threads(),
           "step_s": {k: round(statistics.median(v), 3) for k, v in steps.items()},
           "rollout_s": {k: round(statistics.median(v), 3) for k, v in rolls.items()},
           "mean_answer_tokens": {k: round(statistics.mean(v), 1) for k, v in lengths.items()},
           "step_ratio": round(ratio(steps), 3), "rollout_ratio": round(ratio(rolls), 3)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "grpo_rollout_speed.json").write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
