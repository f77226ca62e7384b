"""GRPO trainer (RLVR): group rollouts scored by a verifiable reward, PPO-clip updates.

Modality-free: it only calls the ``Task`` methods, the rollout engine and a ``Reward``::

    from worldmodels.train.grpo import GRPOTrainer
    from worldmodels.train.grpo_config import grpo_preset
    trainer = GRPOTrainer(grpo_preset("tiny"), task, model, reward, out_dir="runs/rlvr_mae",
                          eval_fn=lambda model: {"mse": ...})
    trainer.train()                      # or trainer.resume("runs/rlvr_mae") first

One GRPO step: sample ``prompts_per_step`` prompts (RNG seeded by (seed, step)), repeat each
``num_generations`` times (``task.repeat``), roll out, decode, reward, group advantages; then
``num_iterations`` epochs over mini-batches of ``mini_batch_prompts`` prompts, each one AdamW
update on the GRPO loss (``grpo_loss.py``). Data parallel (``torchrun``): within every
mini-batch each rank owns a contiguous slice of its prompts; losses are normalised by the
global token count and gradients summed, so W ranks compute the same update as one process.
Prompts are split into chunks of ``rollout_chunk_prompts``, each with its own RNG stream, so
results do not depend on the number of ranks and ``resume`` is exact without saving RNG state
(dropout in the updates, e.g. LoRA's, draws from a stream seeded per step and mini-batch).
Each chunk's forward/backward in an update runs over ``train_micro_batch`` sequences at a time;
the gradient is the same sum over tokens either way.

LoRA (a peft model): only the adapter is trained and checkpointed, and the KL reference is
the same model with its adapter disabled (no copy of the base). Left-padded prompts and rows
that stop early are masked by the rollout's ``attention_mask``; ``mask_truncated_completions``
drops rows that hit the length limit without a stop id from the loss (TRL).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from worldmodels.models.hf import enable_gradient_checkpointing
from worldmodels.models.lora import is_peft_model
from worldmodels.tasks.base import to_device
from worldmodels.train import distributed as dist
from worldmodels.train.grpo_chunk import Chunk, micro_batches, segment_rows
from worldmodels.train.grpo_config import GRPOConfig
from worldmodels.train.grpo_loss import group_advantages, grpo_loss, loss_denominator
from worldmodels.train.rollout import DecodeConfig, rollout, sequence_logprobs
from worldmodels.train.tbptt import windowed_grpo_backward

EvalFn = Callable[[torch.nn.Module], dict]


class GRPOTrainer:
    """Runs GRPO on ``model`` (an HF causal LM) for ``task`` with ``reward``.

    eval_fn(model) -> {name: float} is called on rank 0 at step 0, every ``eval_steps`` and at
    the end; its values are logged as ``eval/<name>``. ``sample_hook(step, batch, predictions,
    rewards)`` (optional) lets a command save example predictions; ``on_save(model, step)``
    runs on every rank after each checkpoint (e.g. to export the weights as a world model);
    ``log_fn(record)`` replaces the JSONL logger.
    """

    def __init__(self, cfg: GRPOConfig, task, model, reward, out_dir: str | Path | None = None,
                 eval_fn: EvalFn | None = None, sample_hook: Callable | None = None,
                 train_split: str = "train", log_fn: Callable[[dict], None] | None = None,
                 on_save: Callable[[torch.nn.Module, int], None] | None = None):
        self.cfg, self.task, self.reward = cfg, task, reward
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.device = dist.pick_device(cfg.device)
        if cfg.rollout_cuda_graphs and self.device.type != "cuda":
            raise ValueError(f"GRPOConfig.rollout_cuda_graphs needs a CUDA device; this run is on "
                             f"{self.device} (device={cfg.device!r})")
        self.decode = DecodeConfig(cuda_graphs=cfg.rollout_cuda_graphs)
        self.model = model.to(self.device)
        # frozen reference only when the KL term is on; a LoRA policy is its own reference
        # with the adapter disabled
        self.ref_model = None
        self.ref_from_adapter = cfg.beta > 0 and is_peft_model(model)
        if cfg.beta > 0 and not self.ref_from_adapter:
            self.ref_model = copy.deepcopy(model).eval().requires_grad_(False)
        if cfg.gradient_checkpointing:
            enable_gradient_checkpointing(self.model)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            params, lr=cfg.learning_rate, betas=(cfg.adam_beta1, cfg.adam_beta2),
            weight_decay=cfg.weight_decay)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.eval_fn, self.sample_hook, self.log_fn = eval_fn, sample_hook, log_fn
        self._logger = None
        self.on_save = on_save
        self.dataset = task.dataset(train_split)
        if len(self.dataset) == 0:
            raise ValueError(f"task {getattr(task, 'name', task)!r} has no {train_split!r} items")
        self.step = 0
        self.optimizer_steps = 0
        mb = cfg.mini_batch_prompts
        if mb % self.world:
            raise ValueError(f"mini_batch_prompts={mb} must be divisible by the number of "
                             f"ranks ({self.world})")
        self.chunk = cfg.rollout_chunk_prompts or mb // self.world
        if (mb // self.world) % self.chunk:
            raise ValueError(f"rollout_chunk_prompts={self.chunk} must divide the prompts per "
                             f"rank and mini-batch ({mb // self.world})")

    # ----------------------------------------------------------------- prompt bookkeeping
    def step_prompts(self, step: int) -> list[int]:
        """Dataset indices of the ``prompts_per_step`` prompts of ``step`` (same on all ranks)."""
        g = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + step)
        n, P = len(self.dataset), self.cfg.prompts_per_step
        if n >= P:
            return torch.randperm(n, generator=g)[:P].tolist()
        return torch.randint(n, (P,), generator=g).tolist()

    def my_chunks(self) -> list[tuple[int, int, int]]:
        """(chunk index, global start, mini-batch) of the chunks this rank rolls out."""
        mb, share = self.cfg.mini_batch_prompts, self.cfg.mini_batch_prompts // self.world
        out = []
        for k in range(self.cfg.prompts_per_step // mb):
            for s in range(k * mb + self.rank * share, k * mb + (self.rank + 1) * share, self.chunk):
                out.append((s // self.chunk, s, k))
        return out

    # ----------------------------------------------------------------------- rollouts
    @torch.no_grad()
    def _rollout_chunk(self, step: int, index: int, minibatch: int, prompt_ids: list[int]):
        cfg, task = self.cfg, self.task
        batch = task.collate([self.dataset[i] for i in prompt_ids])
        batch = task.repeat(batch, cfg.num_generations)
        req = task.rollout_request(batch).to(self.device)
        req.group_size = cfg.num_generations  # adjacent copies of one prompt: prefilled once
        prompt, segments = req.prompt_ids, req.segments
        gen = torch.Generator(device=self.device).manual_seed(
            (cfg.seed * 1_000_003 + step) * 100_003 + index)
        self.model.eval()
        out = rollout(self.model, req, temperature=cfg.temperature, top_k=cfg.top_k,
                      top_p=cfg.top_p, generator=gen, sampler=cfg.sampler, decode=self.decode)
        am = out.attention_mask
        has_stops = any(s.kind == "generate" and s.stop_ids for s in segments)
        truncated = ~out.stopped if has_stops else torch.zeros_like(out.stopped)
        loss_mask = out.loss_mask
        if cfg.mask_truncated_completions:
            loss_mask = loss_mask & ~truncated[:, None]
        preds = task.decode(batch, out)
        total, parts = self.reward(preds, to_device(task.reward_items(batch), self.device))
        total = total.detach().double().cpu()
        valid = torch.isfinite(total)
        if hasattr(self.reward, "valid_mask"):
            valid &= self.reward.valid_mask(total).bool().cpu()
        ref = self._ref_logprobs(out.sequences, prompt.shape[1], segments, am) if cfg.beta > 0 else None
        st = cfg.sample_table_steps
        if self.sample_hook is not None and self.rank == 0 and index == 0 and st and (step + 1) % st == 0:
            self.sample_hook(step + 1, batch, preds, total)
        return Chunk(index, minibatch, out.sequences, prompt.shape[1], segments, am,
                     out.logprobs.float(), ref, loss_mask, None,
                     torch.where(valid, total, torch.full_like(total, math.nan)), valid,
                     {k: v.detach().double().cpu() for k, v in parts.items()}, prompt_ids,
                     float(out.loss_mask.sum()), float(-out.logprobs[out.loss_mask].double().sum()),
                     truncated.cpu(), out.lengths.cpu())

    def _ref_logprobs(self, sequences: Tensor, prompt_len: int, segments: list,
                      attention_mask: Tensor | None) -> Tensor:
        """(R, L) log-probs under the frozen reference: the copy made at the start, or for a
        LoRA policy the policy itself with its adapter disabled (the base model)."""
        kw = dict(temperature=self.cfg.temperature, attention_mask=attention_mask,
                  window=self.cfg.tbptt_window)
        if self.ref_from_adapter:
            with self.model.disable_adapter():
                return sequence_logprobs(self.model, sequences, prompt_len, segments, **kw).float()
        return sequence_logprobs(self.ref_model, sequences, prompt_len, segments, **kw).float()

    def _advantages(self, chunks: list[Chunk]) -> dict[str, float]:
        """Fill ``chunk.advantages`` / mask invalid rows; returns group statistics (global)."""
        cfg, G = self.cfg, self.cfg.num_generations
        batch_std = None
        if cfg.scale_rewards == "batch":
            s = torch.zeros(3, dtype=torch.float64)
            for c in chunks:
                r = c.rewards[c.valid]
                s += torch.stack([r.sum(), (r * r).sum(), torch.tensor(float(r.numel()))])
            s = dist.all_reduce_sum(s)
            n = s[2].clamp(min=2)
            batch_std = float(((s[1] - s[0] ** 2 / n) / (n - 1)).clamp(min=0).sqrt())
        zero, gstd, invalid, groups = 0.0, 0.0, 0.0, 0
        for c in chunks:
            adv, ok, st = group_advantages(c.rewards, G, cfg.scale_rewards, c.valid, batch_std)
            c.advantages = adv.float().to(self.device)
            c.loss_mask = c.loss_mask & ok.to(self.device).unsqueeze(1)
            ng = c.rewards.numel() // G
            zero += st["frac_reward_zero_std"] * ng
            gstd += st["reward_std"] * ng
            invalid += st["invalid_rewards"]
            groups += ng
        z = dist.all_reduce_sum(torch.tensor([zero, gstd, invalid, float(groups)], dtype=torch.float64))
        n = z[3].clamp(min=1)
        return {"frac_reward_zero_std": float(z[0] / n), "reward_std": float(z[1] / n),
                "invalid_rewards": float(z[2])}

    # ------------------------------------------------------------------------ updates
    def _update(self, chunks: list[Chunk], minibatch: int, seed: int) -> dict[str, float]:
        cfg = self.cfg
        mine = [c for c in chunks if c.minibatch == minibatch]
        local_den = sum(loss_denominator(c.loss_mask, cfg.loss_type) for c in mine)
        denom = float(dist.all_reduce_sum(torch.tensor([local_den], dtype=torch.float64))[0])
        self.model.train()
        self.optimizer.zero_grad(set_to_none=False)
        sums = torch.zeros(6, dtype=torch.float64)  # clip, dual, kl, ratio, entropy (token-weighted), tokens
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # dropout: a stream per update, for resume
            torch.manual_seed(seed)
            for c in mine:
                for rows in micro_batches(c.sequences.shape[0], cfg.train_micro_batch):
                    sums += self._forward_backward(c, rows, denom)
        dist.all_reduce_grads(self.model)
        params = [p for p in self.model.parameters() if p.requires_grad]
        if cfg.max_grad_norm > 0:
            gn = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        else:
            gn = torch.norm(torch.stack([p.grad.norm() for p in params if p.grad is not None]))
        self.optimizer.step()
        self.optimizer_steps += 1
        sums = dist.all_reduce_sum(sums)
        n = float(sums[5].clamp(min=1))
        return {"clip_ratio": float(sums[0]) / n, "dual_clip_ratio": float(sums[1]) / n,
                "kl": float(sums[2]) / n, "ratio_mean": float(sums[3]) / n,
                "entropy": float(sums[4]) / n, "grad_norm": float(gn)}

    def _forward_backward(self, c: Chunk, rows: slice, denom: float) -> Tensor:
        """Backward of the GRPO loss of chunk ``c``'s ``rows`` (normalised by the mini-batch's
        global ``denom``); returns token-weighted metric sums (clip, dual, kl, ratio, entropy,
        tokens). The full-vocabulary entropy is always computed (logged); it carries gradient
        only when ``entropy_coef > 0``."""
        cfg = self.cfg
        am = c.attention_mask[rows] if c.attention_mask is not None else None
        if cfg.tbptt_window is not None:
            return windowed_grpo_backward(self.model, cfg, c, rows, am, denom)
        logp, ent = sequence_logprobs(self.model, c.sequences[rows], c.prompt_len,
                                      segment_rows(c.segments, rows), temperature=cfg.temperature,
                                      attention_mask=am, return_entropy=True)
        if cfg.entropy_coef == 0:
            ent = ent.detach()
        ref = c.ref_logprobs[rows] if c.ref_logprobs is not None else None
        loss, m = grpo_loss(logp.float(), c.old_logprobs[rows], c.advantages[rows], c.loss_mask[rows],
                            ref_logprobs=ref, beta=cfg.beta, epsilon=cfg.epsilon,
                            epsilon_high=cfg.epsilon_high, dual_clip=cfg.dual_clip,
                            loss_type=cfg.loss_type, normalizer=denom, entropy=ent.float(),
                            entropy_coef=cfg.entropy_coef)
        loss.backward()
        t = m["tokens"]
        return torch.tensor([m["clip_ratio"] * t, m["dual_clip_ratio"] * t, m["kl"] * t,
                             m["ratio_mean"] * t, m["entropy"] * t, t], dtype=torch.float64)

    def train_step(self) -> dict[str, float]:
        """One GRPO step (rollouts + updates); returns the step's global metrics."""
        cfg, step = self.cfg, self.step
        prompts = self.step_prompts(step)
        t0 = time.perf_counter()
        chunks = [self._rollout_chunk(step, i, k, prompts[s:s + self.chunk])
                  for i, s, k in self.my_chunks()]
        t_roll = time.perf_counter() - t0
        stats = self._advantages(chunks)
        updates = []
        n_mb = cfg.prompts_per_step // cfg.mini_batch_prompts
        for it in range(cfg.num_iterations):
            for k in range(n_mb):
                seed = (((cfg.seed * 1_000_003 + step) * 1009 + it * n_mb + k) * 101 + self.rank) % 2**63
                updates.append(self._update(chunks, k, seed))
        self.step += 1
        metrics = {"step": self.step, "optimizer_steps": self.optimizer_steps}
        metrics.update(self._reward_metrics(chunks))
        metrics.update(stats)
        for key in updates[0]:
            metrics[key] = sum(u[key] for u in updates) / len(updates)
        gen = dist.all_reduce_sum(torch.tensor(
            [sum(c.gen_tokens for c in chunks), sum(c.neg_logp for c in chunks), t_roll,
             sum(float(c.truncated.sum()) for c in chunks), sum(float(c.lengths.sum()) for c in chunks),
             sum(c.lengths.numel() for c in chunks)], dtype=torch.float64))
        # "entropy" (full vocabulary, at update time) comes from the updates; this is the
        # Monte-Carlo estimate at rollout time: mean -log p of the sampled tokens
        metrics["entropy_sampled"] = float(gen[1] / gen[0].clamp(min=1))
        metrics["completions/clipped_ratio"] = float(gen[3] / gen[5].clamp(min=1))  # TRL names
        metrics["completions/mean_length"] = float(gen[4] / gen[5].clamp(min=1))
        metrics["gen_tokens_per_s"] = float(gen[0] / (gen[2] / self.world))
        metrics["lr"] = self.optimizer.param_groups[0]["lr"]
        metrics["step_time_s"] = time.perf_counter() - t0
        self._last_chunks = chunks
        return metrics

    def _reward_metrics(self, chunks: list[Chunk]) -> dict[str, float]:
        names = sorted(chunks[0].parts) if chunks else []
        vals = []
        for c in chunks:
            r = torch.where(c.valid, c.rewards, torch.zeros_like(c.rewards))
            row = [r.sum(), (r * r).sum(), c.valid.sum().double()]
            for nme in names:
                p = c.parts[nme]
                row.append(torch.where(c.valid, p, torch.zeros_like(p)).sum())
            vals.append(torch.stack(row))
        s = dist.all_reduce_sum(torch.stack(vals).sum(0) if vals else torch.zeros(3 + len(names),
                                                                                  dtype=torch.float64))
        n = float(s[2].clamp(min=1))
        mean = float(s[0]) / n
        var = (float(s[1]) - n * mean * mean) / max(n - 1, 1)
        out = {"reward": mean, "reward_std_batch": math.sqrt(max(var, 0.0))}
        for i, nme in enumerate(names):
            out[f"reward/{nme}"] = float(s[3 + i]) / n
        return out

    # ----------------------------------------------------------------------- the loop
    def evaluate(self) -> dict[str, float]:
        """Run ``eval_fn`` on rank 0 (others wait); returns {"eval/<k>": v} ({} without one)."""
        out: dict[str, float] = {}
        if self.eval_fn is not None and self.rank == 0:
            self.model.eval()
            with torch.no_grad():
                out = {f"eval/{k}": float(v) for k, v in self.eval_fn(self.model).items()}
        dist.barrier()
        return out

    def train(self, max_steps: int | None = None, progress: bool = True) -> list[dict]:
        """Run until ``max_steps`` (default cfg.max_steps); returns the logged records."""
        from tqdm.auto import tqdm

        cfg = self.cfg
        total = cfg.max_steps if max_steps is None else max_steps
        records = []
        if self.step == 0 and self.eval_fn is not None:
            records.append(self._log({"step": 0, **self.evaluate()}))
        bar = tqdm(total=total, initial=self.step, desc="grpo", disable=not progress or self.rank)
        while self.step < total:
            m = self.train_step()
            last = self.step == total
            if self.eval_fn is not None and (last or (cfg.eval_steps and self.step % cfg.eval_steps == 0)):
                m.update(self.evaluate())
            if cfg.sample_table_steps and self.step % cfg.sample_table_steps == 0:
                self._write_samples()
            if last or self.step % cfg.logging_steps == 0:
                records.append(self._log(m))
            if self.out_dir is not None and (last or (cfg.save_steps and self.step % cfg.save_steps == 0)):
                self.save(self.out_dir)
            bar.update(1)
            bar.set_postfix(reward=f"{m['reward']:.4f}", kl=f"{m['kl']:.2e}")
        bar.close()
        if self._logger is not None:
            self._logger.close()
            self._logger = None
        return records

    def _log(self, record: dict) -> dict:
        if self.rank == 0:
            if self.log_fn is not None:
                self.log_fn(record)
            elif self.out_dir is not None:
                if self._logger is None:
                    from worldmodels.train.logging import RunLogger

                    self._logger = RunLogger(self.out_dir, tensorboard=False)
                self._logger.log(record.get("step", self.step),
                                 {k: v for k, v in record.items() if k != "step"})
        return record

    def _write_samples(self) -> None:
        if self.rank != 0 or self.out_dir is None:
            return
        rows = []
        for c in self._last_chunks:
            G = self.cfg.num_generations
            for j in range(c.rewards.numel()):
                rows.append({"step": self.step, "prompt": c.prompt_ids[j // G], "sample": j % G,
                             "reward": float(c.rewards[j]),
                             **{k: float(v[j]) for k, v in c.parts.items()}})
        with open(self.out_dir / "samples.jsonl", "a") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)

    # ------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        return {"optimizer_steps": self.optimizer_steps, "grpo_config": dataclasses.asdict(self.cfg)}

    def save(self, out_dir: str | Path) -> Path | None:
        """Atomic checkpoint ``out_dir/checkpoints/step_<n>`` (policy, or a LoRA policy's
        adapter; optimizer; counters); call on every rank."""
        from worldmodels.train.checkpoint import save_checkpoint

        path = save_checkpoint(out_dir, self.step, {"model": self.model}, optimizer=self.optimizer,
                               state=self.state_dict(), rank=self.rank, world_size=self.world)
        if self.on_save is not None:
            self.on_save(self.model, self.step)
        return path

    def resume(self, path: str | Path) -> bool:
        """Load the latest checkpoint of run dir ``path`` (or the checkpoint dir ``path``):
        policy (a LoRA policy: its adapter, onto the same base), optimizer, step. The reference
        model stays the initial one (LoRA: the base). False if none."""
        from worldmodels.train.checkpoint import STATE_FILE, latest_checkpoint, load_checkpoint

        path = Path(path)
        ckpt = path if (path / STATE_FILE).is_file() else latest_checkpoint(path)
        if ckpt is None:
            return False
        state = load_checkpoint(ckpt, {"model": self.model}, optimizer=self.optimizer,
                                rank=self.rank, restore_rng=False, map_location=self.device)
        self.step, self.optimizer_steps = int(state["step"]), int(state["optimizer_steps"])
        return True

