"""``GRPOConfig``: the GRPO knobs (TRL names), RLVR-World video defaults, and presets.

    from worldmodels.train.grpo_config import GRPOConfig, grpo_preset
    cfg = grpo_preset("tiny", max_steps=50)            # CPU-sized
    cfg = GRPOConfig()                                 # RLVR-World video settings
    cfg = grpo_preset("text-game")                     # RLVR-World's text-game run (language.md 1.5)
    cfg = grpo_preset("text-game-tiny")                # the same knobs, CPU-sized
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

#: Lowest accepted sampling temperature: below about 1e-38 (or at inf) ``logits / temperature``
#: overflows float32 and the log-softmax is NaN; 1e-6 leaves room for logits up to ~1e32.
MIN_TEMPERATURE = 1e-6


@dataclass
class GRPOConfig:
    """GRPO / RLVR settings. Defaults follow RLVR-World's video runs (ARCHITECTURE.md).

    num_generations: samples per prompt (the GRPO group). RLVR-World: 16.
    prompts_per_step: prompts rolled out per GRPO step, over all ranks. RLVR-World: 128.
    mini_batch_prompts: prompts per optimizer update (``prompts_per_step`` must be a multiple);
        one GRPO step makes ``num_iterations * prompts_per_step / mini_batch_prompts`` updates.
    num_iterations: PPO epochs over each step's rollouts (TRL ``num_iterations``). 1 = on-policy.
    rollout_chunk_prompts: prompts per ``rollout`` call (each chunk has its own RNG stream,
        seeded by (seed, step, chunk)); 0 = a rank's share of one mini-batch. Results do not
        depend on the number of ranks when this is fixed.
    train_micro_batch: sequences per forward/backward pass in an update (a chunk's
        ``rollout_chunk_prompts * num_generations`` rows are split into pieces of at most this
        many; the gradient is the same, only peak memory changes); 0 = a whole chunk at once.
    gradient_checkpointing: recompute activations in the backward pass instead of storing them
        (less memory, ~30% more compute in the updates; same loss and gradient).
    learning_rate: AdamW learning rate, constant. RLVR-World: 5e-5.
    weight_decay: AdamW weight decay.
    adam_beta1: AdamW beta1.
    adam_beta2: AdamW beta2.
    max_grad_norm: gradient clipping by global norm (<= 0 disables). 1.0.
    beta: KL coefficient (k3 estimator, clamped to +-10) to the frozen reference model (the
        initial policy; for a LoRA policy, the policy with its adapter disabled); 0 skips the
        reference model entirely. RLVR-World: 0.001.
    epsilon: PPO clip range below (and above unless ``epsilon_high``). 0.2.
    epsilon_high: upper clip range (asymmetric, "clip-higher"); null = ``epsilon``.
    dual_clip: dual-clip constant c > 1 bounding the loss of negative-advantage tokens by
        ``-A*c``; null disables. RLVR-World: 3.0 (video); none in their text fork.
    entropy_coef: entropy bonus: the loss subtracts ``entropy_coef`` times the mean token
        entropy of the policy's full (vocab-masked, temperature-scaled) distribution over the
        generated tokens, aggregated like the policy loss (verl ``entropy_coeff``), >= 0.
        0 = none (RLVR-World video); their text runs keep verl's 0.001. The full-vocabulary
        entropy is logged as ``entropy`` either way, the sampled estimate as ``entropy_sampled``.
    mask_truncated_completions: completions that reach a generate segment's length limit
        without one of its ``stop_ids`` get no loss (TRL); their rewards still count in their
        group's statistics. No effect on tasks whose segments have no stop ids.
    temperature: sampling temperature (log-probs are taken under the same temperature), finite
        and >= ``MIN_TEMPERATURE`` (1e-6). 1.0.
    top_k: sample only from the k most likely tokens; null = no truncation.
    top_p: nucleus sampling threshold; null = no truncation.
    sampler: how the rollout draws a token from its probabilities (``train/rollout.py``
        ``SAMPLERS``): "inverse_cdf" (default; one uniform number per row, located in the
        float64 cumulative sum) or "multinomial" (``torch.multinomial``: ``generate``'s draws
        for the same seed, and those of runs made before the engine's default changed on
        2026-11-30). Both sample the same distribution exactly.
    rollout_cuda_graphs: replay the rollout's one-token decode step as CUDA graphs
        (``DecodeConfig.cuda_graphs``: ``torch.compile`` mode "reduce-overhead" on the static
        KV cache). Needs a CUDA device; False runs the step eagerly. On an H200 the GRPO-like
        text rollout (116M Llama, group 5) ran 5.8x ``generate`` with it and 1.1x without
        (docs/rollout.md): a small model's decode is launch-bound there. The first rollout of
        each cache length (prompt + answers, rounded up to 64 positions) pays a compilation;
        past torch's recompile limit a new length runs eagerly.
    scale_rewards: advantage scaling: "group" (unbiased group std), "batch" (std of all
        rewards of the step), "none" (only subtract the group mean).
    loss_type: "token_mean" (mean over all generated tokens of a mini-batch) or
        "sequence_mean" (mean per sequence, then over sequences).
    max_steps: number of GRPO steps.
    seed: base seed of prompt sampling and rollouts (per step and chunk, so resume is exact).
    logging_steps: write a metrics line every this many steps.
    eval_steps: run the held-out evaluation hook every this many steps (0 = only at start/end).
    save_steps: write an atomic checkpoint every this many steps (0 = only at the end).
    sample_table_steps: write a table of per-sample rewards every this many steps (0 = never).
    device: "auto" (CUDA when available, else CPU), "cpu" or "cuda".
    tbptt_window: truncated BPTT of the update's log-prob pass (seeds.md §8, Among Us's
        ``reevaluate_logprobs``): sequences run in windows of this many tokens with the
        recurrent state carried and detached, and the policy loss is backpropagated window by
        window (memory O(window)); the reference log-probs are computed the same way. Equal in
        value to the full pass (the gradient is truncated at window borders). Needs a backbone
        whose cache is a recurrent state (rwkv7; a KV-cache backbone is an error naming this
        field) and ``loss_type=token_mean``. null = one full forward.
    """

    num_generations: int = 16
    prompts_per_step: int = 128
    mini_batch_prompts: int = 32
    num_iterations: int = 1
    rollout_chunk_prompts: int = 0
    train_micro_batch: int = 0
    gradient_checkpointing: bool = False
    learning_rate: float = 5e-5
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    max_grad_norm: float = 1.0
    beta: float = 0.001
    epsilon: float = 0.2
    epsilon_high: float | None = None
    dual_clip: float | None = 3.0
    entropy_coef: float = 0.0
    mask_truncated_completions: bool = False
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    sampler: Literal["inverse_cdf", "multinomial"] = "inverse_cdf"
    rollout_cuda_graphs: bool = False
    scale_rewards: Literal["group", "batch", "none"] = "group"
    loss_type: Literal["token_mean", "sequence_mean"] = "token_mean"
    max_steps: int = 300
    seed: int = 0
    logging_steps: int = 1
    eval_steps: int = 50
    save_steps: int = 50
    sample_table_steps: int = 0
    device: str = "auto"
    tbptt_window: int | None = None

    def __post_init__(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ValueError(f"GRPOConfig.{msg}")

        need(self.tbptt_window is None or (isinstance(self.tbptt_window, int)
                                           and not isinstance(self.tbptt_window, bool)
                                           and self.tbptt_window >= 1),
             f"tbptt_window must be an int >= 1 (tokens per window) or null, got {self.tbptt_window!r}")
        need(self.tbptt_window is None or self.loss_type == "token_mean",
             f"tbptt_window needs loss_type=token_mean (a window holds part of a sequence, so "
             f"the per-sequence mean is not split by windows), got {self.loss_type!r}")

        need(self.num_generations >= 2, f"num_generations must be >= 2 (a group needs a "
             f"baseline), got {self.num_generations}")
        need(self.prompts_per_step >= 1, f"prompts_per_step must be >= 1, got {self.prompts_per_step}")
        need(self.mini_batch_prompts >= 1 and self.prompts_per_step % self.mini_batch_prompts == 0,
             f"mini_batch_prompts ({self.mini_batch_prompts}) must divide prompts_per_step "
             f"({self.prompts_per_step})")
        need(self.num_iterations >= 1, f"num_iterations must be >= 1, got {self.num_iterations}")
        need(self.rollout_chunk_prompts >= 0, "rollout_chunk_prompts must be >= 0")
        need(self.train_micro_batch >= 0, f"train_micro_batch must be >= 0 (0 = a whole rollout "
             f"chunk), got {self.train_micro_batch}")
        need(self.learning_rate > 0 and math.isfinite(self.learning_rate),
             f"learning_rate must be a finite number > 0, got {self.learning_rate}")
        need(self.weight_decay >= 0 and math.isfinite(self.weight_decay),
             f"weight_decay must be a finite number >= 0, got {self.weight_decay}")
        need(not math.isnan(self.max_grad_norm), "max_grad_norm must be a number (<= 0 disables), got nan")
        need(0 <= self.adam_beta1 < 1 and 0 <= self.adam_beta2 < 1, "adam_beta1/2 must be in [0, 1)")
        need(self.beta >= 0 and math.isfinite(self.beta),  # inf * (KL = 0 at step 0) is NaN
             f"beta must be a finite number >= 0, got {self.beta}")
        need(0 < self.epsilon < 1, f"epsilon must be in (0, 1), got {self.epsilon}")
        need(self.epsilon_high is None or self.epsilon_high > 0,
             f"epsilon_high must be > 0 or null, got {self.epsilon_high}")
        need(self.dual_clip is None or self.dual_clip > 1,
             f"dual_clip must be > 1 or null, got {self.dual_clip}")
        need(self.entropy_coef >= 0 and math.isfinite(self.entropy_coef),
             f"entropy_coef must be a finite number >= 0, got {self.entropy_coef}")
        need(MIN_TEMPERATURE <= self.temperature < math.inf,
             f"temperature must be finite and >= {MIN_TEMPERATURE} (logits / temperature overflows "
             f"below), got {self.temperature}")
        need(self.top_k is None or self.top_k >= 1, f"top_k must be >= 1 or null, got {self.top_k}")
        need(self.top_p is None or 0 < self.top_p <= 1, f"top_p must be in (0, 1] or null, got {self.top_p}")
        need(self.sampler in ("inverse_cdf", "multinomial"),
             f"sampler must be inverse_cdf|multinomial, got {self.sampler!r}")
        need(isinstance(self.rollout_cuda_graphs, bool),
             f"rollout_cuda_graphs must be true|false, got {self.rollout_cuda_graphs!r}")
        need(not (self.rollout_cuda_graphs and self.device == "cpu"),
             "rollout_cuda_graphs needs a CUDA device, got device='cpu'")
        need(self.scale_rewards in ("group", "batch", "none"),
             f"scale_rewards must be group|batch|none, got {self.scale_rewards!r}")
        need(self.loss_type in ("token_mean", "sequence_mean"),
             f"loss_type must be token_mean|sequence_mean, got {self.loss_type!r}")
        need(self.max_steps >= 0, f"max_steps must be >= 0, got {self.max_steps}")
        for f in ("logging_steps", "eval_steps", "save_steps", "sample_table_steps"):
            need(getattr(self, f) >= 0, f"{f} must be >= 0")
        need(self.logging_steps >= 1, "logging_steps must be >= 1")
        need(self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
             f"device must be auto|cpu|cuda, got {self.device!r}")


#: Named presets: field overrides on top of the RLVR-World defaults.
PRESETS: dict[str, dict] = {
    "default": {},
    # CPU-sized (a step takes ~15-60 s on 2 shared cores with the tiny world model). The RL
    # learning rate follows RLVR-World's choice of the pretraining learning rate (5e-5 there);
    # the tiny pretraining recipe decays from 1e-3 to 1e-4, so 1e-4 here.
    "tiny": dict(num_generations=8, prompts_per_step=8, mini_batch_prompts=8,
                 learning_rate=1e-4, max_steps=300, eval_steps=25, save_steps=50),
    # RLVR-World's text-game GRPO run (reference language.md 1.5, run_text_game_rl.sh): group 5,
    # 128 prompts/step, PPO mini-batch 64, 1 epoch, lr 1e-6 constant, k3 KL loss 1e-3, entropy
    # 1e-3, clip 0.2, no dual clip, temperature 1, top-p 1 / top-k off, token-mean, grad clip 1,
    # test/save every 20 steps. AdamW weight decay 0.01 and betas (0.9, 0.999) are verl's
    # defaults of that time (fsdp_workers), not set by their script.
    "text-game": dict(num_generations=5, prompts_per_step=128, mini_batch_prompts=64,
                      num_iterations=1, learning_rate=1e-6, weight_decay=0.01, adam_beta1=0.9,
                      adam_beta2=0.999, max_grad_norm=1.0, beta=1e-3, entropy_coef=1e-3,
                      epsilon=0.2, epsilon_high=None, dual_clip=None, temperature=1.0, top_k=None,
                      top_p=None, scale_rewards="group", loss_type="token_mean",
                      eval_steps=20, save_steps=20),
    # The same knobs sized for 2 CPU cores and the tiny from-scratch text-game model
    # (data/recipes/text_game_rlvr_tiny.yaml): 8 prompts/step, one mini-batch; the tiny model's
    # learning rate (5e-5, not tuned) instead of 1e-6, which suits a 1.5B LoRA-SFT model.
    "text-game-tiny": dict(num_generations=5, prompts_per_step=8, mini_batch_prompts=8,
                           num_iterations=1, learning_rate=5e-5, weight_decay=0.01, beta=1e-3,
                           entropy_coef=1e-3, epsilon=0.2, dual_clip=None, temperature=1.0,
                           top_k=None, top_p=None, max_steps=200, eval_steps=25, save_steps=25),
}


def grpo_preset(name: str = "default", **overrides) -> GRPOConfig:
    """``GRPOConfig`` from a named preset plus field overrides."""
    if name not in PRESETS:
        raise ValueError(f"unknown GRPO preset {name!r}; known: {sorted(PRESETS)}")
    values = {**PRESETS[name], **overrides}
    known = {f.name for f in dataclasses.fields(GRPOConfig)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown GRPOConfig field(s) {sorted(unknown)}; known: {sorted(known)}")
    return GRPOConfig(**values)
