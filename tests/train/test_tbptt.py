"""Truncated BPTT in the MLE engine (train.tbptt_window): windows partition the labels; with
W >= T the loss and gradient equal full BPTT; with W < T the loss value equals the full pass
and the gradient equals a hand-built windowed computation (state detached at the borders);
the "detached" border (Among Us) keeps the value and drops the border tokens' gradient;
a KV-cache backbone is refused naming the flag; config validation.

    OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/train/test_tbptt.py
"""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tbptt_toys import SeqTask, V, rwkv  # noqa: E402

from worldmodels.models import build_backbone  # noqa: E402
from worldmodels.models.rwkv7_cache import RWKV7State  # noqa: E402
from worldmodels.tasks.base import IGNORE_INDEX  # noqa: E402
from worldmodels.train.mle import forward_backward, token_loss_sum  # noqa: E402
from worldmodels.train.mle_config import MLEConfig  # noqa: E402
from worldmodels.train.rollout_cache import output_cache
from worldmodels.train.tbptt import WindowedLM, windows  # noqa: E402


@pytest.fixture(scope="module")
def task():
    return SeqTask()


def batch(task, rows=(0, 1, 2, 3)):
    return task.collate([task.items[i] for i in rows])  # T = 30, left-padded rows of 17/23/30


def grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def full(model, lm):
    model.zero_grad()
    s, n = token_loss_sum(model, lm)
    s.backward()
    return float(s.detach()), n, grads(model)


def windowed(model, lm, W, border="attached"):
    model.zero_grad()
    run, total, n = WindowedLM(model, lm, W, border), 0.0, 0
    for k in range(len(run)):
        n += run.loss_tokens(k)
        s = run.loss_sum(k)
        s.backward()
        total += float(s.detach())
    return total, n, grads(model)


def hand_windowed(model, lm, W, border_grad=True):
    """Independent T-BPTT: an explicit RWKV7State, cut with .detach() at every border, inputs
    x[s:e], targets x[s+1:e+1], log-softmax + gather (not cross_entropy). ``border_grad=False``
    scores each window's last logit (detached) instead: the Among Us layout's gradient."""
    model.zero_grad()
    ids, lab, am = lm["input_ids"], lm["labels"], lm["attention_mask"]
    T, state, total = ids.shape[1], None, 0.0
    for s in range(0, T - 1, W):
        e = min(s + W, T - 1)
        out = model(input_ids=ids[:, s:e], attention_mask=am[:, :e], cache=state, use_cache=True)
        state = RWKV7State(len(output_cache(out).layers))
        for i, (a, b, c) in enumerate(output_cache(out).layers):
            state.update(i, (a.detach(), b.detach(), c.detach()))
        logp = out.logits.float().log_softmax(-1)
        if not border_grad and e < T - 1:  # a border: the next window scores it
            logp = torch.cat([logp[:, :-1], logp[:, -1:].detach()], 1)
        tgt = lab[:, s + 1:e + 1]
        keep = tgt != IGNORE_INDEX
        lp = logp.gather(-1, tgt.clamp(min=0)[..., None])[..., 0]
        loss = -(lp * keep).sum()
        loss.backward()
        total += float(loss.detach())
    return total, grads(model)


@pytest.mark.parametrize("border", ["attached", "detached"])
@pytest.mark.parametrize("T,W", [(30, 1), (30, 7), (30, 29), (31, 30), (5, 100)])
def test_windows_partition_the_labels(T, W, border):
    spans = windows(T, W, border)
    labels = [t for _, _, lo, hi in spans for t in range(lo, hi)]
    assert labels == list(range(1, T))  # every label once, in order
    assert all(e - s <= W for s, e, _, _ in spans)
    assert spans[0][0] == 0 and all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))


@pytest.mark.parametrize("border,W", [("attached", 29), ("attached", 64), ("detached", 30),
                                      ("detached", 64)])
def test_window_covering_the_sequence_equals_full_bptt(task, W, border):
    """T = 30: attached windows feed inputs 0..28 (the last token predicts nothing), so
    W >= 29 is one window; detached ones feed 0..29."""
    model, lm = rwkv(), batch(task)
    ref, n_ref, g_ref = full(model, lm)
    val, n, g = windowed(model, lm, W, border)
    assert n == n_ref == int((lm["labels"][:, 1:] != IGNORE_INDEX).sum())
    assert val == pytest.approx(ref, rel=1e-5)
    assert g.keys() == g_ref.keys()
    for k in g_ref:
        torch.testing.assert_close(g[k], g_ref[k], rtol=1e-4, atol=1e-6, msg=k)


@pytest.mark.parametrize("W", [4, 7, 13])
def test_short_windows_keep_the_loss_value_and_truncate_the_gradient(task, W):
    model, lm = rwkv(), batch(task)
    ref, n_ref, g_full = full(model, lm)
    val, n, g = windowed(model, lm, W)
    assert n == n_ref  # no label lost at the borders
    assert val == pytest.approx(ref, rel=1e-5)  # the carried state makes the forward exact
    hand, g_hand = hand_windowed(model, lm, W)
    assert val == pytest.approx(hand, rel=1e-5)
    for k in g_hand:
        assert torch.isfinite(g[k]).all()
        torch.testing.assert_close(g[k], g_hand[k], rtol=1e-4, atol=1e-6, msg=k)
    # the truncation is real: the recurrent weights' gradient differs from full BPTT
    k = "model.layers.0.attn.k_proj.weight"
    assert (g[k] - g_full[k]).abs().max() > 1e-4 * g_full[k].abs().max()


def test_detached_border_keeps_the_value_and_drops_the_border_gradient(task):
    model, lm = rwkv(), batch(task)
    val_a, _, _ = windowed(model, lm, 7, "attached")
    val_d, n, g = windowed(model, lm, 7, "detached")
    assert val_d == pytest.approx(val_a, rel=1e-5)
    hand, g_hand = hand_windowed(model, lm, 7, border_grad=False)
    assert val_d == pytest.approx(hand, rel=1e-5)
    for k in g_hand:
        torch.testing.assert_close(g[k], g_hand[k], rtol=1e-4, atol=1e-6, msg=k)


def test_forward_backward_sequence_mode_matches_the_full_step(task):
    """train.tbptt_step=sequence: two micro-batches, one normaliser; W >= T gives the full
    step's gradient, W < T its loss value."""
    micro = [[task.items[i] for i in (0, 1, 2)], [task.items[i] for i in (3, 4)]]
    micro = [task.collate(m) for m in micro]
    model = rwkv()
    model.zero_grad()
    ref = forward_backward(model, task, micro, torch.device("cpu"))
    g_ref = grads(model)
    model.zero_grad()
    out = forward_backward(model, task, micro, torch.device("cpu"), window=40)
    for k in g_ref:
        torch.testing.assert_close(grads(model)[k], g_ref[k], rtol=1e-4, atol=1e-7, msg=k)
    model.zero_grad()
    short = forward_backward(model, task, micro, torch.device("cpu"), window=5)
    for o in (out, short):
        assert o["loss_tokens"] == ref["loss_tokens"] and o["tokens"] == ref["tokens"]
        assert o["loss_sum"] == pytest.approx(ref["loss_sum"], rel=1e-5)


def test_kv_cache_backbone_is_refused_naming_the_flag(task):
    llama = build_backbone("test", V, 64)
    with pytest.raises(ValueError, match=r"train\.tbptt_window.*recurrent state.*DynamicCache"):
        forward_backward(llama, task, [batch(task)], torch.device("cpu"), window=8)


@pytest.mark.parametrize("kw,msg", [({"tbptt_window": 0}, "tbptt_window"),
                                    ({"tbptt_window": 2.5}, "tbptt_window"),
                                    ({"tbptt_window": True}, "tbptt_window"),
                                    ({"tbptt_step": "batch"}, "tbptt_step"),
                                    ({"tbptt_border": "none"}, "tbptt_border")])
def test_config_validation(kw, msg):
    with pytest.raises(ValueError, match=msg):
        MLEConfig(**kw)


def test_held_out_loss_with_windows_equals_the_full_pass(task):
    from worldmodels.train.mle import evaluate

    model = rwkv()
    loader = [batch(task, (0, 1, 2)), batch(task, (3, 4, 5, 6))]
    full_loss = evaluate(model, task, loader, torch.device("cpu"), "fp32", 8)
    assert evaluate(model, task, loader, torch.device("cpu"), "fp32", 8, window=6) == pytest.approx(
        full_loss, rel=1e-6)
    assert model.training  # evaluate restores training mode


def test_window_steps_split_micro_batches_by_window(task):
    """train.tbptt_step=window with two micro-batches of different lengths: one step per
    window index that has loss tokens in either, normalised by that window's tokens; the
    steps' loss sums add up to the full loss; ``last`` only on the final step."""
    from worldmodels.train.mle import window_steps

    micro = [task.collate([task.items[i] for i in (0, 3)]), task.collate([task.items[i] for i in (1, 4)])]
    assert micro[0]["input_ids"].shape[1] != micro[1]["input_ids"].shape[1]
    model = rwkv()
    ref = sum(float(token_loss_sum(model, m)[0].detach()) for m in micro)
    n_ref = sum(int((m["labels"][:, 1:] != IGNORE_INDEX).sum()) for m in micro)
    zeroed, outs = [], []
    for out in window_steps(model, task, micro, torch.device("cpu"), "fp32", 6, "attached",
                            lambda: zeroed.append(1) or model.zero_grad()):
        g = model.lm_head.weight.grad
        outs.append((out, float(g.abs().sum())))
    counts = [sum(int((m["labels"][:, lo:hi] != IGNORE_INDEX).sum())
                  for m in micro for s, e, lo, hi in windows(m["input_ids"].shape[1], 6)
                  if s == k * 6) for k in range(6)]
    assert [o["loss_tokens"] for o, _ in outs] == [c for c in counts if c]
    assert len(zeroed) == len(outs) and [o["last"] for o, _ in outs] == [False] * (len(outs) - 1) + [True]
    assert sum(o["loss_sum"] for o, _ in outs) == pytest.approx(ref, rel=1e-5)
    assert sum(o["loss_tokens"] for o, _ in outs) == n_ref
    assert all(g > 0 for _, g in outs)
