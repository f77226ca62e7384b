"""The rollout engine on RWKV-7 (its cache is the recurrent state): the rollout's per-token
log-probs equal one differentiable forward (``sequence_logprobs``); left-padded rows that stop
at different steps equal each row rolled out alone; a group's shared prefill gives the plain
path's samples; the static-cache path falls back to the recurrent state cleanly.

    OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/models/test_rwkv7_rollout.py
"""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rwkv7_toys import random_model  # noqa: E402

from worldmodels.models.rwkv7 import RWKV7State  # noqa: E402
from worldmodels.tasks.base import RolloutRequest, repeat_batch  # noqa: E402
from worldmodels.train.rollout import DecodeConfig, Segment, rollout, sequence_logprobs  # noqa: E402
from worldmodels.train.rollout_cache import Stepper  # noqa: E402

V = 40
PLAIN = DecodeConfig(share_prefill=False, cache="dynamic", compact=False)


@pytest.fixture(scope="module")
def model():
    return random_model(11, C=32, H=2, L=2, vocab=V, D=8, F=64, chunk_size=4)


def segments(B):
    g = torch.Generator().manual_seed(1)
    return [Segment("generate", 6, allowed=(0, 10)),
            Segment("force", 3, tokens=torch.randint(20, 30, (B, 3), generator=g)),
            Segment("generate", 5, allowed=(10, 20)),
            Segment("generate", 2, allowed=(38, 40))]


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_rollout_logprobs_equal_full_forward(model, temperature):
    B, P = 6, 7
    prompt = torch.randint(0, V, (B, P), generator=torch.Generator().manual_seed(5))
    segs = segments(B)
    out = rollout(model, prompt, segs, temperature=temperature, top_k=8,
                  generator=torch.Generator().manual_seed(2))
    lp = sequence_logprobs(model, out.sequences, P, segs, temperature=temperature)
    torch.testing.assert_close(lp, out.logprobs, atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # independent reference: a plain log_softmax on a fresh forward
        logits = model(out.sequences).logits[:, P - 1:-1].float()
    ref = (logits[:, 9:14, 10:20] / temperature).log_softmax(-1)
    tgt = out.completion_ids[:, 9:14] - 10
    torch.testing.assert_close(lp[:, 9:14], ref.gather(-1, tgt[..., None])[..., 0], atol=1e-5, rtol=0)
    assert (out.logprobs[out.loss_mask] < 0).all() and torch.isfinite(out.logprobs).all()


def left_pad(rows, pad=17):
    P = max(r.shape[0] for r in rows)
    ids = torch.full((len(rows), P), pad, dtype=torch.long)
    mask = torch.zeros(len(rows), P, dtype=torch.bool)
    for i, r in enumerate(rows):
        ids[i, P - len(r):], mask[i, P - len(r):] = r, True
    return ids, mask


def test_padded_stopping_rows_equal_each_row_alone(model):
    """Greedy, left-padded prompts, rows stopping at different steps then a forced stretch:
    every row's tokens and log-probs equal the row rolled out alone (padding and post-stop
    padding never touch the recurrent state), and one forward reproduces the log-probs."""
    g = torch.Generator().manual_seed(3)
    rows = [torch.randint(0, V, (n,), generator=g) for n in (2, 7, 4, 5, 3, 6)]
    prompt, mask = left_pad(rows)
    B, P = prompt.shape
    force = torch.randint(20, 30, (B, 2), generator=g)

    def segs(stop, f):
        return [Segment("generate", 7, allowed=(0, 20), stop_ids=stop), Segment("force", 2, tokens=f),
                Segment("generate", 3, allowed=(30, 40))]

    free = rollout(model, prompt, segs((), force), top_k=1, prompt_mask=mask)
    stop = (int(free.completion_ids[0, 1]), int(free.completion_ids[3, 3]))
    out = rollout(model, prompt, segs(stop, force), top_k=1, prompt_mask=mask, pad_id=5)
    assert out.stopped.any() and out.lengths.unique().numel() >= 2
    lp = sequence_logprobs(model, out.sequences, P, segs(stop, force), attention_mask=out.attention_mask)
    torch.testing.assert_close(lp, out.logprobs, atol=1e-5, rtol=1e-5)
    for r, p in enumerate(rows):
        s = segs(stop, force[r:r + 1])
        alone = rollout(model, p[None], s, top_k=1, pad_id=5)
        assert torch.equal(out.completion_ids[r], alone.completion_ids[0])
        assert torch.equal(out.stopped[r], alone.stopped[0]) and out.lengths[r] == alone.lengths[0]
        torch.testing.assert_close(out.logprobs[r], alone.logprobs[0], atol=1e-5, rtol=0)


def grouped_request(G=3, seed=4):
    """GRPO's layout: 4 left-padded prompts each repeated G times, stop ids, a forced stretch."""
    g = torch.Generator().manual_seed(seed)
    lens = (2, 7, 4, 5)
    prompt, mask = left_pad([torch.randint(0, V, (n,), generator=g) for n in lens])
    force = torch.randint(20, 30, (len(lens), 2), generator=g)
    batch = repeat_batch({"prompt": prompt, "mask": mask, "force": force}, G)
    segs = [Segment("generate", 8, allowed=(0, 20), stop_ids=(3, 7, 11)),
            Segment("force", 2, tokens=batch["force"]),
            Segment("generate", 4, allowed=(30, 40), stop_ids=(31,))]
    return RolloutRequest(batch["prompt"], segs, batch["mask"], pad_id=5, group_size=G)


def test_shared_prefill_equals_plain_prefill_and_stays_recurrent(model):
    """One prefill row per group, expanded with the state's batch_repeat_interleave: the same
    samples as feeding all 12 rows; the default decode config keeps the recurrent state (no
    static cache for RWKV-7); "static" is refused with a clear error."""
    req = grouped_request(G=3)
    seen = []
    hook = model.get_input_embeddings().register_forward_hook(lambda m, i, o: seen.append(o.shape[0]))
    try:
        shared = rollout(model, req, generator=torch.Generator().manual_seed(0))
        assert seen[0] == 4
        seen.clear()
        plain = rollout(model, req, generator=torch.Generator().manual_seed(0), decode=PLAIN)
        assert seen[0] == 12
    finally:
        hook.remove()
    assert shared.lengths.unique().numel() >= 3 and shared.stopped.any()
    assert torch.equal(shared.completion_ids, plain.completion_ids)
    assert torch.equal(shared.attention_mask, plain.attention_mask)
    torch.testing.assert_close(shared.logprobs, plain.logprobs, atol=1e-6, rtol=0)
    lp = sequence_logprobs(model, shared.sequences, req.prompt_ids.shape[1], req.segments,
                           attention_mask=shared.attention_mask)
    torch.testing.assert_close(lp, shared.logprobs, atol=1e-5, rtol=0)
    step = Stepper(model, 12, 40, True, 3, DecodeConfig(), torch.device("cpu"))
    step.feed(req.prompt_ids, req.prompt_mask.long())
    assert step.shared_prefill and not step.static and isinstance(step.cache, RWKV7State)
    with pytest.raises(ValueError, match="StaticCache"):
        rollout(model, req, decode=DecodeConfig(cache="static"))
