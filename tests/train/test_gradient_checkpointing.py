"""gradient_checkpointing as a switch in MLE and GRPO: it is really on, and the loss and the
gradient equal those computed without it.

    OMP_NUM_THREADS=1 .venv/bin/pytest -q tests/train/test_gradient_checkpointing.py
"""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grpo_toys import LMTask, StopReward, StopTask, tiny_model  # noqa: E402

from worldmodels.train.grpo import GRPOTrainer  # noqa: E402
from worldmodels.train.grpo_config import GRPOConfig  # noqa: E402
from worldmodels.train.mle import train_mle  # noqa: E402
from worldmodels.train.mle_config import MLEConfig, OptimConfig  # noqa: E402


def _checkpointed_layers(model) -> int:
    return sum(bool(layer.gradient_checkpointing) for layer in model.model.layers)


@pytest.fixture
def grad_forwards(monkeypatch):
    """Counts Llama MLP forwards run with autograd on: the training forwards, plus the replays
    that activation checkpointing runs inside the backward pass (module hooks do not see those,
    so the class's forward is wrapped)."""
    from transformers.models.llama import modeling_llama

    count = [0]
    orig = modeling_llama.LlamaMLP.forward

    def counted(self, x):
        count[0] += int(torch.is_grad_enabled())
        return orig(self, x)

    monkeypatch.setattr(modeling_llama.LlamaMLP, "forward", counted)
    return count


def test_mle_gradient_checkpointing_same_training(tmp_path, grad_forwards):
    results = {}
    for on in (False, True):
        model = tiny_model()
        grad_forwards[0] = 0
        cfg = MLEConfig(steps=2, batch_size=8, device="cpu", eval_every=0, save_every=0,
                        log_every=1, tensorboard=False, precision="fp32",
                        optim=OptimConfig(lr=1e-3, warmup_steps=0), gradient_checkpointing=on)
        out = train_mle(model, LMTask(), cfg, tmp_path / f"run{on}")
        results[on] = (out, model, grad_forwards[0])
        assert _checkpointed_layers(model) == (2 if on else 0)
    (off, m_off, n_off), (on, m_on, n_on) = results[False], results[True]
    assert (n_off, n_on) == (2 * 2, 2 * 2 * 2)  # 2 layers x 2 steps, replayed when checkpointing
    assert on["loss"] == pytest.approx(off["loss"], rel=1e-6) and on["grad_norm"] == pytest.approx(
        off["grad_norm"], rel=1e-6)
    for (name, a), b in zip(m_off.named_parameters(), m_on.parameters(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7, msg=name)


def test_grpo_gradient_checkpointing_same_gradient(grad_forwards):
    got = {}
    for on in (False, True):
        c = GRPOConfig(num_generations=4, prompts_per_step=4, mini_batch_prompts=4, beta=0.05,
                       max_steps=1, device="cpu", eval_steps=0, save_steps=0, max_grad_norm=0.0,
                       gradient_checkpointing=on)
        tr = GRPOTrainer(c, StopTask(), tiny_model(), StopReward())
        grad_forwards[0] = 0
        m = tr.train_step()
        assert _checkpointed_layers(tr.model) == (2 if on else 0)
        assert grad_forwards[0] == (4 if on else 2)  # one update through 2 layers, replayed when on
        if on:  # the reference copy is made before the switch, and rollouts kept their cache
            assert _checkpointed_layers(tr.ref_model) == 0
        got[on] = ({n: p.grad.clone() for n, p in tr.model.named_parameters()}, m)
    (g0, m0), (g1, m1) = got[False], got[True]
    for name in g0:
        torch.testing.assert_close(g1[name], g0[name], rtol=1e-6, atol=1e-8, msg=name)
    for k in ("kl", "clip_ratio", "ratio_mean", "reward", "grad_norm"):
        assert m1[k] == pytest.approx(m0[k], rel=1e-6, abs=1e-12), k
