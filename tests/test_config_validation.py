"""Configs that used to validate and then gave NaN or crashed far away (issue 17, kind 2).

Each case builds the config with one bad value and expects a ValueError that names the field;
where a boundary value stays accepted, the test checks that it gives finite output.
"""

from __future__ import annotations

import math

import pytest
import torch

NAN, INF = float("nan"), float("inf")


def _raises(field: str, make) -> None:
    with pytest.raises(ValueError, match=field):
        make()


# --- planners --------------------------------------------------------------------------------
def test_plan_run_config_rejects_values_that_fail_later():
    from planners.mpc import PlanRunConfig

    _raises("goal_weight", lambda: PlanRunConfig(goal_weight=INF))   # inf * 0 in the cost: NaN
    _raises("goal_weight", lambda: PlanRunConfig(goal_weight=NAN))
    _raises("seed", lambda: PlanRunConfig(seed=-1))                  # numpy: negative seed
    _raises("image_size", lambda: PlanRunConfig(image_size=4))
    PlanRunConfig(goal_weight=0.5, seed=0, image_size=8)              # boundaries accepted


def test_real2sim_config_rejects_values_that_fail_later():
    from planners.real2sim import Real2SimConfig

    _raises("tasks", lambda: Real2SimConfig(tasks=()))                # no metrics: crash at the end
    _raises("videos", lambda: Real2SimConfig(videos=2))               # real/sim clips mis-tiled
    _raises("seed", lambda: Real2SimConfig(seed=-1))
    _raises("image_size", lambda: Real2SimConfig(image_size=0))
    _raises("names must be distinct", lambda: Real2SimConfig(models=("a", "b"), names=("x", "x")))
    assert Real2SimConfig(policies="").policies == ""                 # scripted + random only: valid


# --- quantizers and tokenizer configs ---------------------------------------------------------
def test_fsq_level_one_and_bad_eps_rejected():
    """(Level 2, the smallest accepted, is checked finite in test_quantizers.py.)"""
    from tokenizers_video.frame_tokenizer import FrameTokenizerConfig
    from tokenizers_video.quantizers import FSQ

    _raises("fsq_levels", lambda: FrameTokenizerConfig(fsq_levels=(8, 1)))   # floor(1/2) = 0 scale
    _raises("fsq_levels", lambda: FrameTokenizerConfig(fsq_levels=()))
    _raises("eps", lambda: FSQ([5, 5], eps=1.0))
    _raises("eps", lambda: FSQ([4], eps=0.0))


def test_vq_fields_checked_in_the_config_and_the_module():
    from tokenizers_video.frame_tokenizer import FrameTokenizerConfig
    from tokenizers_video.quantizers import VQ

    _raises("vq_beta", lambda: FrameTokenizerConfig(quantizer="vq", vq_beta=NAN))
    _raises("vq_beta", lambda: FrameTokenizerConfig(quantizer="vq", vq_beta=-0.1))
    _raises("vq_decay", lambda: FrameTokenizerConfig(quantizer="vq", vq_decay=1.0))
    _raises("vq_codebook_size", lambda: FrameTokenizerConfig(quantizer="vq", vq_codebook_size=1))
    _raises("vq_restart_threshold", lambda: FrameTokenizerConfig(quantizer="vq", vq_restart_threshold=INF))
    _raises("eps", lambda: VQ(8, 4, eps=0.0))       # an unused code's EMA count reaches 0: 0/0
    FrameTokenizerConfig(quantizer="vq", vq_beta=0.0)                 # no commitment: allowed


def test_frame_tokenizer_config_rejects_shapes_that_crash_later():
    from tokenizers_video.frame_tokenizer import FrameTokenizerConfig

    _raises("norm_num_groups", lambda: FrameTokenizerConfig(norm_num_groups=0))   # was % by zero
    _raises("block_out_channels", lambda: FrameTokenizerConfig(block_out_channels=(0, 8)))
    _raises("image_size", lambda: FrameTokenizerConfig(image_size=0))
    _raises("image_size", lambda: FrameTokenizerConfig(image_size=-64))


def test_compressive_config_rejects_shapes_that_crash_later():
    from tokenizers_video.compressive import CompressiveTokenizerConfig

    _raises("xattn_heads", lambda: CompressiveTokenizerConfig(xattn_heads=0))     # was % by zero
    _raises("norm_num_groups", lambda: CompressiveTokenizerConfig(norm_num_groups=0))
    _raises("context_channels", lambda: CompressiveTokenizerConfig(context_channels=()))
    _raises("fsq_levels", lambda: CompressiveTokenizerConfig(fsq_levels=(8, 1)))
    _raises("image_size", lambda: CompressiveTokenizerConfig(image_size=0))


def test_tokenizer_train_config_rejects_non_finite_values():
    from tokenizers_video.train import TrainConfig

    _raises("lr", lambda: TrainConfig(lr=NAN))
    _raises("disc_lr", lambda: TrainConfig(disc_lr=INF))
    _raises("l1_weight", lambda: TrainConfig(l1_weight=NAN))
    _raises("gan_weight", lambda: TrainConfig(gan_weight=INF))
    _raises("weight_decay", lambda: TrainConfig(weight_decay=-1e-4))
    _raises("beta2", lambda: TrainConfig(beta2=1.0))
    _raises("disc_channels", lambda: TrainConfig(disc_channels=0))
    _raises("max_minutes", lambda: TrainConfig(max_minutes=NAN))


# --- trainers ---------------------------------------------------------------------------------
def test_grpo_config_rejects_values_that_give_nan():
    from worldmodels.train.grpo_config import GRPOConfig

    _raises("num_generations", lambda: GRPOConfig(num_generations=1))   # std of one sample
    _raises("learning_rate", lambda: GRPOConfig(learning_rate=INF))
    _raises("weight_decay", lambda: GRPOConfig(weight_decay=INF))
    _raises("beta", lambda: GRPOConfig(beta=INF))                       # inf * KL(=0) = NaN
    _raises("max_grad_norm", lambda: GRPOConfig(max_grad_norm=NAN))
    for t in (INF, NAN, 1e-40, 0.0):
        _raises("temperature", lambda t=t: GRPOConfig(temperature=t))
    _raises("dual_clip", lambda: GRPOConfig(dual_clip=1.0))
    _raises("epsilon", lambda: GRPOConfig(epsilon=NAN))


def test_lowest_accepted_temperature_gives_finite_log_probs():
    """Independent check of the bound: at MIN_TEMPERATURE, large logits still give a finite
    log-softmax for every allowed token; just below float32's range (1e-40) they do not."""
    from worldmodels.train.grpo_config import MIN_TEMPERATURE, GRPOConfig

    GRPOConfig(temperature=MIN_TEMPERATURE)
    logits = torch.tensor([[1e4, -1e4, 3.0, float("-inf")]])
    lp = torch.log_softmax(logits / MIN_TEMPERATURE, dim=-1)
    assert torch.isfinite(lp[0, :3]).all() and lp[0, 0] == 0
    assert torch.isnan(torch.log_softmax(logits / 1e-40, dim=-1)).any()


def test_video_eval_config_temperature():
    from worldmodels.evaluate import EvalConfig as VideoEvalConfig  # one evaluation config now

    for t in (NAN, INF, 1e-40):
        _raises("temperature", lambda t=t: VideoEvalConfig(temperature=t))
    assert VideoEvalConfig(temperature=0.5).temperature == 0.5


def test_mle_configs_reject_values_that_give_nan_or_fail_later():
    from worldmodels.train.mle_config import MLEConfig, OptimConfig

    _raises("optim.lr", lambda: OptimConfig(lr=NAN))
    _raises("optim.lr", lambda: OptimConfig(lr=INF))
    _raises("grad_clip", lambda: OptimConfig(grad_clip=NAN))        # clip_grad_norm_(nan): NaN grads
    _raises("weight_decay", lambda: OptimConfig(weight_decay=NAN))
    _raises("optim.betas", lambda: OptimConfig(betas=(0.9, 1.0)))
    _raises("optim.betas", lambda: OptimConfig(betas=(0.9, 0.95, 0.99)))
    _raises("min_lr_ratio", lambda: OptimConfig(min_lr_ratio=-0.1))  # negative lr at the end
    _raises("min_lr_ratio", lambda: OptimConfig(min_lr_ratio=NAN))
    _raises("max_minutes", lambda: MLEConfig(max_minutes=NAN))
    _raises("train.distributed", lambda: MLEConfig(distributed="zero3"))
    _raises("train.device", lambda: MLEConfig(device="gpu"))
    assert MLEConfig(device="cuda:1").device == "cuda:1"
    assert OptimConfig(grad_clip=0.0, warmup_steps=0, min_lr_ratio=0.0).grad_clip == 0.0


def test_constant_schedule_without_warmup_is_finite():
    """warmup_steps=0 (allowed) never divides by it: the factor is 1 from step 0."""
    from worldmodels.train.mle import make_scheduler
    from worldmodels.train.mle_config import OptimConfig

    for schedule in ("constant", "cosine"):
        cfg = OptimConfig(warmup_steps=0, schedule=schedule)
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
        sched = make_scheduler(opt, cfg, total_steps=3)
        lrs = []
        for _ in range(4):
            lrs.append(sched.get_last_lr()[0])
            opt.step()
            sched.step()
        assert all(math.isfinite(v) and v > 0 for v in lrs) and lrs[0] == pytest.approx(cfg.lr)


# --- data -------------------------------------------------------------------------------------
def test_robot_data_config_rejects_non_finite_noise_and_negative_seed():
    from worldmodels.envs.robot_data import RobotDataConfig

    _raises("expert_noise", lambda: RobotDataConfig(expert_noise=[0.0, NAN]))
    _raises("expert_noise", lambda: RobotDataConfig(expert_noise=[INF]))
    _raises("seed", lambda: RobotDataConfig(seed=-1))                # SeedSequence: negative
    assert RobotDataConfig(expert_noise=[0.0]).expert_noise == [0.0]
