"""GRPO with padded prompts and early-stopping rows, and the knobs train_micro_batch,
mask_truncated_completions and gradient_checkpointing, checked against a per-row computation.

    OMP_NUM_THREADS=1 .venv/bin/pytest -q tests/train/test_grpo_knobs.py
"""

import copy
import re
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grpo_toys import ALLOWED, EOS, EOT, StopReward, StopTask, tiny_model  # noqa: E402

from worldmodels.tasks.base import Segment  # noqa: E402
from worldmodels.train.grpo import GRPOTrainer  # noqa: E402
from worldmodels.train.grpo_config import GRPOConfig  # noqa: E402
from worldmodels.train.grpo_loss import grpo_loss  # noqa: E402
from worldmodels.train.rollout import sequence_logprobs  # noqa: E402


def cfg(**kw):
    base = dict(num_generations=4, prompts_per_step=4, mini_batch_prompts=4, learning_rate=1e-3,
                beta=0.05, max_steps=1, device="cpu", eval_steps=0, save_steps=0,
                max_grad_norm=0.0)  # no clipping: the gradient is left as computed
    base.update(kw)
    return GRPOConfig(**base)


def grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def per_row_grads(start, chunks, c: GRPOConfig):
    """The update's gradient computed one row at a time, without padding: each row's prompt
    without its left padding, its answer cut after the stop token (or at the limit), summed
    token losses over the global count of loss tokens. Also returns the rows' facts."""
    model, ref = copy.deepcopy(start), copy.deepcopy(start).eval()
    rows = []
    for ch in chunks:
        P = ch.prompt_len
        for i in range(ch.sequences.shape[0]):
            prompt = ch.sequences[i, :P][ch.attention_mask[i, :P].bool()]
            answer = ch.sequences[i, P:]
            stop = torch.isin(answer, torch.tensor([EOS, EOT])).nonzero()
            n = int(stop[0]) + 1 if len(stop) else answer.numel()  # found independently
            keep = bool(ch.valid[i]) and (len(stop) > 0 or not c.mask_truncated_completions)
            rows.append((ch, i, prompt, answer[:n], len(stop) > 0, keep))
    denom = sum(len(a) for *_, a, _, keep in rows if keep)
    model.train()
    for ch, i, prompt, answer, _, keep in rows:
        if not keep:
            continue
        seq, seg = torch.cat([prompt, answer])[None], [StopTask.segment(len(answer))]
        logp = sequence_logprobs(model, seq, len(prompt), seg, temperature=c.temperature)
        with torch.no_grad():
            ref_lp = sequence_logprobs(ref, seq, len(prompt), seg, temperature=c.temperature)
        n = len(answer)
        loss, _ = grpo_loss(logp, ch.old_logprobs[i:i + 1, :n], ch.advantages[i:i + 1],
                            torch.ones(1, n, dtype=torch.bool), ref_logprobs=ref_lp, beta=c.beta,
                            epsilon=c.epsilon, dual_clip=c.dual_clip, normalizer=denom)
        loss.backward()
    return grads(model), rows


@pytest.mark.parametrize("micro,mask_truncated,checkpointing", [
    (0, False, False), (3, True, False), (5, False, True)])
def test_padded_stopping_batch_equals_per_row_computation(micro, mask_truncated, checkpointing):
    c = cfg(train_micro_batch=micro, mask_truncated_completions=mask_truncated,
            gradient_checkpointing=checkpointing)
    start = tiny_model()
    tr = GRPOTrainer(c, StopTask(), copy.deepcopy(start), StopReward())
    m = tr.train_step()
    want, rows = per_row_grads(start, tr._last_chunks, c)
    # the batch really mixes prompt lengths, early stops and truncated rows
    assert len({len(p) for _, _, p, *_ in rows}) > 1
    assert len({len(a) for *_, a, _, _ in rows}) > 2
    stopped = [s for *_, s, _ in rows]
    assert any(stopped) and not all(stopped)
    assert m["completions/clipped_ratio"] == pytest.approx(1 - sum(stopped) / len(stopped))
    assert m["completions/mean_length"] == pytest.approx(sum(len(a) for *_, a, _, _ in rows) / len(rows))
    got = grads(tr.model)
    assert got.keys() == want.keys() and len(got) > 0
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-4, atol=1e-7, msg=name)


def test_mask_truncated_completions_drops_exactly_the_truncated_rows():
    on = GRPOTrainer(cfg(mask_truncated_completions=True), StopTask(), tiny_model(), StopReward())
    off = GRPOTrainer(cfg(), StopTask(), tiny_model(), StopReward())
    on.train_step()
    off.train_step()
    for a, b in zip(on._last_chunks, off._last_chunks, strict=True):
        assert torch.equal(a.sequences, b.sequences)  # same rollouts
        answer = a.sequences[:, a.prompt_len:]
        truncated = ~torch.isin(answer, torch.tensor([EOS, EOT])).any(1)
        assert truncated.any() and not truncated.all()
        assert not a.loss_mask[truncated].any()
        assert torch.equal(a.loss_mask[~truncated], b.loss_mask[~truncated])
        assert b.loss_mask[truncated].all(1).all()  # without the knob they carry loss
        assert torch.equal(a.advantages, b.advantages)  # rewards still count in the groups


def test_train_micro_batch_gives_the_unsplit_gradient():
    runs = {}
    for micro in (0, 1, 6):
        tr = GRPOTrainer(cfg(train_micro_batch=micro), StopTask(), tiny_model(), StopReward())
        calls = []

        def hook(mod, inp, out, calls=calls):  # update forwards only (rollouts: no grad)
            if torch.is_grad_enabled():
                calls.append(out.shape[0])

        h = tr.model.lm_head.register_forward_hook(hook)
        m = tr.train_step()
        h.remove()
        runs[micro] = (grads(tr.model), m, calls)
    g0, m0, calls0 = runs[0]
    assert max(calls0) == 16 and max(runs[1][2]) == 1 and max(runs[6][2]) == 6
    for micro in (1, 6):
        g, m, _ = runs[micro]
        for name in g0:
            torch.testing.assert_close(g[name], g0[name], rtol=1e-5, atol=1e-8, msg=name)
        for k in ("kl", "clip_ratio", "ratio_mean", "reward"):
            assert m[k] == pytest.approx(m0[k], rel=1e-5, abs=1e-9), k


def test_new_knobs_validated():
    with pytest.raises(ValueError, match="train_micro_batch must be >= 0"):
        GRPOConfig(train_micro_batch=-1)
    with pytest.raises(ValueError, match=re.escape("sampler must be inverse_cdf|multinomial, got 'gumbel'")):
        GRPOConfig(sampler="gumbel")
    d = GRPOConfig()
    assert (d.train_micro_batch, d.gradient_checkpointing, d.mask_truncated_completions) == (0, False, False)
    assert d.sampler == "inverse_cdf"
    # the config's allowed names are the engine's samplers (a new one must be added to both)
    import typing

    from worldmodels.train.rollout import SAMPLERS
    assert typing.get_args(typing.get_type_hints(GRPOConfig)["sampler"]) == SAMPLERS


def test_sampler_knob_reaches_the_rollout(monkeypatch):
    """``sampler`` is passed to every draw of the trainer's rollouts, and the two samplers give
    other tokens from the same generator seed (each sampler's exactness: test_sampler.py)."""
    import worldmodels.train.rollout as rollout_mod
    calls = []
    real_draw = rollout_mod.draw

    def spy(probs, generator=None, sampler="inverse_cdf"):
        calls.append(sampler)
        return real_draw(probs, generator, sampler)

    monkeypatch.setattr(rollout_mod, "draw", spy)
    seqs = {}
    for name in ("multinomial", "inverse_cdf"):
        calls.clear()
        tr = GRPOTrainer(cfg(sampler=name), StopTask(), tiny_model(), StopReward())
        tr.train_step()
        assert calls and set(calls) == {name}
        seqs[name] = torch.cat([c.sequences for c in tr._last_chunks])
    assert seqs["multinomial"].shape == seqs["inverse_cdf"].shape
    assert not torch.equal(seqs["multinomial"], seqs["inverse_cdf"])


def test_segments_without_stop_ids_are_never_truncated():
    """Fixed-length (video-like) completions: mask_truncated_completions changes nothing."""
    class Fixed(StopTask):
        def rollout_request(self, batch):
            req = super().rollout_request(batch)
            req.segments = [Segment("generate", 4, allowed=ALLOWED)]
            return req

    tr = GRPOTrainer(cfg(mask_truncated_completions=True), Fixed(), tiny_model(), StopReward())
    m = tr.train_step()
    assert m["completions/clipped_ratio"] == 0.0
    assert all(c.loss_mask.all() for c in tr._last_chunks)


def test_rollout_cuda_graphs_knob_is_validated_and_refused_off_cuda():
    """``rollout_cuda_graphs`` takes a bool, is refused with device=cpu at config time and, with
    device=auto on a machine without CUDA, when the trainer is built (before any rollout).
    Its effect on a GPU (same samples and update as the eager step): tests/gpu."""
    with pytest.raises(ValueError, match="rollout_cuda_graphs must be true|false"):
        cfg(rollout_cuda_graphs="yes")
    with pytest.raises(ValueError, match="rollout_cuda_graphs needs a CUDA device, got device='cpu'"):
        cfg(rollout_cuda_graphs=True)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="needs a CUDA device; this run is on cpu"):
            GRPOTrainer(cfg(rollout_cuda_graphs=True, device="auto"), StopTask(), tiny_model(), StopReward())
    tr = GRPOTrainer(cfg(), StopTask(), tiny_model(), StopReward())
    assert tr.decode.cuda_graphs is False
