"""Compaction of stopped rows on a recurrent state (RWKV-7): a rollout whose rows stop at
different steps gives the same samples and log-probs with compaction on and off (sampled at
temperature 1, greedy, and with a shared group prefill), while the decode forwards shrink to
the rows still running and widen again for a later segment; the merged state equals the
uncompacted one.

    OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/train/test_rollout_recurrent.py
"""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from rollout_toys import padded_group_request  # noqa: E402
from rwkv7_toys import random_model  # noqa: E402

from worldmodels.train.rollout import DecodeConfig, rollout  # noqa: E402
from worldmodels.train.rollout_cache import Stepper, output_cache  # noqa: E402

V = 40
OFF = DecodeConfig(compact=False)


@pytest.fixture(scope="module")
def model():
    return random_model(7, C=32, H=2, L=2, vocab=V, D=8, F=64, chunk_size=4)


def rows_fed(model):
    """Batch sizes of every forward of ``model`` (via its embeddings); returns (list, handle)."""
    seen = []
    h = model.get_input_embeddings().register_forward_hook(lambda m, i, o: seen.append(o.shape[0]))
    return seen, h


def request(G=1, seed=4, stops=(3, 7, 11)):
    """4 left-padded prompts (lengths 2..7), each repeated G times; a generate segment with
    stop ids, a forced stretch and a second generate segment with a stop id."""
    return padded_group_request(G, seed, V, first=(10, stops), second=(6, (31, 32)))


def assert_same(a, b):
    assert torch.equal(a.completion_ids, b.completion_ids)
    assert torch.equal(a.stopped, b.stopped) and torch.equal(a.lengths, b.lengths)
    assert torch.equal(a.attention_mask, b.attention_mask) and torch.equal(a.loss_mask, b.loss_mask)
    torch.testing.assert_close(a.logprobs, b.logprobs, atol=1e-5, rtol=0)


@pytest.mark.parametrize("G,top_k", [(1, None), (4, None), (2, 1)])
def test_compaction_gives_the_same_samples_and_feeds_fewer_rows(model, G, top_k):
    req = request(G)
    B = req.prompt_ids.shape[0]
    seen, h = rows_fed(model)
    on = rollout(model, req, top_k=top_k, generator=torch.Generator().manual_seed(0))
    fed_on = list(seen)
    seen.clear()
    off = rollout(model, req, top_k=top_k, generator=torch.Generator().manual_seed(0), decode=OFF)
    fed_off = list(seen)
    h.remove()
    assert_same(on, off)
    # rows stopped at different steps of the first segment, and the second one ran again
    first = on.loss_mask[:, :10].sum(1)
    assert len(set(first.tolist())) > 2 and (first < 10).any()
    assert on.loss_mask[:, 12:].any()
    assert fed_off[1:] == [B] * (len(fed_off) - 1)  # off: every decode step feeds all rows
    assert min(fed_on) < B / 2 and sum(fed_on) < sum(fed_off)
    # the forced stretch (one forward of 2 tokens) feeds every row again
    assert B in fed_on[2:]


@torch.no_grad()  # as in rollout()
def test_merged_state_equals_the_uncompacted_state(model):
    """Stepper level: after rows leave and come back, the state of every row equals the one
    fed without compaction (padding never changes a recurrent state)."""
    req = request()
    B, P = req.prompt_ids.shape
    g = torch.Generator().manual_seed(2)
    steps = [(torch.randint(0, V, (B, 1), generator=g), torch.tensor([[1], [1], [1], [1]])),
             (torch.randint(0, V, (B, 1), generator=g), torch.tensor([[1], [0], [0], [0]])),
             (torch.randint(0, V, (B, 1), generator=g), torch.tensor([[1], [0], [0], [0]])),
             (torch.randint(0, V, (B, 2), generator=g), torch.ones(B, 2, dtype=torch.long))]
    outs = []
    for cfg in (DecodeConfig(), OFF):
        st = Stepper(model, B, P + 5, True, 1, cfg, torch.device("cpu"))
        logits = [st.feed(req.prompt_ids, req.prompt_mask.long())]
        for ids, m in steps:
            logits.append(st.feed(ids, m, need=m.bool().any(1)))
        outs.append((st, logits))
    (on, lon), (off, loff) = outs
    assert on.recurrent and not off.recurrent
    assert on.rows_fed == [4, 4, 1, 1, 4] and off.rows_fed == [4]  # prefill only counted off
    assert on.sub is None and on.parked is None
    # float32 rounding of 1-row vs 4-row products: up to 1.6e-6 on some CPUs (2026-12-01's CI
    # machine); feeding the padded steps as tokens (the bug this guards) moves the state by 2.8
    for a, b in zip(output_cache(on).layers, output_cache(off).layers, strict=True):
        for x, y in zip(a, b, strict=True):
            torch.testing.assert_close(x, y, atol=1e-5, rtol=0)
    for k, (x, y) in enumerate(zip(lon, loff, strict=True)):
        live = steps[k - 1][1].bool().any(1) if k else torch.ones(B, dtype=torch.bool)
        torch.testing.assert_close(x[live], y[live], atol=1e-5, rtol=0)
    assert output_cache(on).seen == output_cache(off).seen


def test_state_is_read_from_past_key_values_when_forward_takes_cache(model):
    """transformers 5.0-5.1x: our RWKV-7's forward takes ``cache`` but the output class names
    the field ``past_key_values`` (seen on the H200's 5.17). The engine must carry the state
    from whichever field holds it: the same samples as the model whose output says ``cache``."""
    from types import SimpleNamespace

    class OldOutputs(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids=None, attention_mask=None, position_ids=None, cache=None,
                    use_cache=None, logits_to_keep=0):
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask, cache=cache,
                             use_cache=use_cache, logits_to_keep=logits_to_keep)
            return SimpleNamespace(logits=out.logits, past_key_values=output_cache(out))

    req = request(G=2)
    old = rollout(OldOutputs(model), req, generator=torch.Generator().manual_seed(5), decode=OFF)
    new = rollout(model, req, generator=torch.Generator().manual_seed(5), decode=OFF)
    assert_same(old, new)
    assert output_cache(SimpleNamespace(cache=None, past_key_values="pkv")) == "pkv"
    assert output_cache(SimpleNamespace(cache="c", past_key_values=None)) == "c"
    assert output_cache(SimpleNamespace(logits=1)) is None
