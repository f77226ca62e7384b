"""GRPO's log-prob pass with truncated BPTT (grpo.tbptt_window) on RWKV-7: windowed
log-probs and entropies equal the full pass (left-padded prompts, forced segments, stops);
a window covering the sequence gives the full gradient; a GRPO step with the knob has the
same rollouts, loss metrics and (W >= T) gradient as without it, feeding at most W tokens per
forward; KV-cache backbones and sequence_mean are refused naming the field.

    OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/train/test_tbptt_grpo.py
"""

import copy
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from grpo_toys import StopReward, StopTask, V, tiny_model  # noqa: E402
from rwkv7_toys import random_model  # noqa: E402

from worldmodels.train.grpo import GRPOTrainer  # noqa: E402
from worldmodels.train.grpo_config import GRPOConfig  # noqa: E402
from worldmodels.train.rollout import Segment, rollout, sequence_logprobs  # noqa: E402


def rwkv(seed=3):
    return random_model(seed, C=32, H=2, L=2, vocab=V, D=8, F=64, chunk_size=4)


def sample(model):
    g = torch.Generator().manual_seed(4)
    B, P = 6, 7
    prompt = torch.randint(3, V, (B, P), generator=g)
    mask = torch.ones(B, P, dtype=torch.bool)
    for r, n in enumerate((7, 3, 5, 2, 6, 4)):
        mask[r, :P - n] = False
    segs = [Segment("generate", 5, allowed=(1, V), stop_ids=(1, 2)),
            Segment("force", 3, tokens=torch.randint(3, V, (B, 3), generator=g)),
            Segment("generate", 6, allowed=(3, 12))]
    out = rollout(model, prompt, segs, prompt_mask=mask, generator=torch.Generator().manual_seed(8))
    assert not out.loss_mask[:, :5].all()  # some rows stopped early
    return out, P, segs


@pytest.mark.parametrize("W", [1, 3, 8, 19, 100])
def test_windowed_logprobs_equal_the_full_pass(W):
    model = rwkv().train()
    out, P, segs = sample(model)
    lp, ent = sequence_logprobs(model, out.sequences, P, segs, temperature=0.8,
                                attention_mask=out.attention_mask, return_entropy=True)
    wlp, went = sequence_logprobs(model, out.sequences, P, segs, temperature=0.8,
                                  attention_mask=out.attention_mask, return_entropy=True, window=W)
    torch.testing.assert_close(wlp, lp, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(went, ent, atol=1e-5, rtol=1e-5)
    assert (lp != 0).sum() > 20
    if W >= out.sequences.shape[1] - 1:  # one window: the full gradient
        g = []
        for window in (None, W):
            model.zero_grad()
            (sequence_logprobs(model, out.sequences, P, segs, attention_mask=out.attention_mask,
                               window=window) * torch.linspace(0.5, 1.5, 14)).sum().backward()
            g.append({n: p.grad.clone() for n, p in model.named_parameters()})
        for n in g[0]:
            torch.testing.assert_close(g[1][n], g[0][n], rtol=1e-4, atol=1e-6, msg=n)


def test_kv_cache_backbone_is_refused_naming_the_field():
    model = tiny_model()
    seq = torch.randint(3, V, (2, 9))
    with pytest.raises(ValueError, match=r"grpo\.tbptt_window.*recurrent state"):
        sequence_logprobs(model, seq, 4, [Segment("generate", 5, allowed=(1, V))], window=4)


def cfg(**kw):
    base = dict(num_generations=4, prompts_per_step=4, mini_batch_prompts=4, learning_rate=1e-3,
                beta=0.05, entropy_coef=0.01, max_steps=1, device="cpu", eval_steps=0,
                save_steps=0, max_grad_norm=0.0)
    base.update(kw)
    return GRPOConfig(**base)


def test_grpo_step_with_windows_equals_the_step_without():
    start = rwkv(5).train()
    runs = {}
    for W in (None, 3, 64):
        tr = GRPOTrainer(cfg(tbptt_window=W), StopTask(), copy.deepcopy(start), StopReward())
        widths = []

        def hook(mod, inp, out, widths=widths):  # update forwards only (rollouts: no grad)
            if torch.is_grad_enabled():
                widths.append(inp[0].shape[1])

        h = tr.model.model.embeddings.register_forward_hook(hook)
        m = tr.train_step()
        h.remove()
        g = {n: p.grad.clone() for n, p in tr.model.named_parameters() if p.grad is not None}
        runs[W] = (m, g, widths, tr._last_chunks)
    m0, g0, w0, ch0 = runs[None]
    assert max(w0) > 3 and max(runs[3][2]) <= 3  # windows of at most 3 tokens carry the gradient
    for W in (3, 64):
        m, g, _, ch = runs[W]
        for a, b in zip(ch, ch0, strict=True):
            assert torch.equal(a.sequences, b.sequences)  # same rollouts
            torch.testing.assert_close(a.ref_logprobs, b.ref_logprobs, atol=1e-5, rtol=1e-5)
        for k in ("reward", "kl", "clip_ratio", "ratio_mean", "entropy"):
            assert m[k] == pytest.approx(m0[k], rel=1e-4, abs=1e-7), k
        assert all(torch.isfinite(v).all() for v in g.values())
    for n in g0:  # W = 64 covers the sequences: the full gradient
        torch.testing.assert_close(runs[64][1][n], g0[n], rtol=1e-4, atol=1e-7, msg=n)


def test_config_validation():
    with pytest.raises(ValueError, match="tbptt_window"):
        GRPOConfig(tbptt_window=0)
    with pytest.raises(ValueError, match="tbptt_window needs loss_type=token_mean"):
        GRPOConfig(tbptt_window=8, loss_type="sequence_mean")
