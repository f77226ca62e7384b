"""GRPO loss math against numbers computed by hand (plain python, not our helpers).

    OMP_NUM_THREADS=1 .venv/bin/pytest -q tests/train/test_grpo_loss.py
"""

import math

import pytest
import torch

from worldmodels.train.grpo_loss import group_advantages, grpo_loss, k3_kl, sampled_entropy

# 2 prompts x 3 samples, item-major (samples of one prompt adjacent).
REWARDS = [1.0, 2.0, 3.0, 0.0, 0.0, 3.0]
# 3 completion tokens per sample; False = forced token (e.g. an action) that carries no loss.
MASK = [
    [True, True, False],
    [True, False, True],
    [True, True, True],
    [True, True, False],
    [False, True, True],
    [True, True, True],
]
OLD = [
    [-1.0, -2.0, -0.5],
    [-1.5, -1.0, -0.7],
    [-0.3, -2.5, -1.1],
    [-1.2, -0.9, -3.0],
    [-0.4, -1.6, -0.8],
    [-2.0, -0.6, -1.3],
]
# new = old + delta: sample 2 token 0 has ratio e^0.5 > 1.2 with A > 0 (clipped);
# sample 0 token 1 has ratio e^-0.5 < 0.8 with A < 0 (clipped: the clipped branch is larger);
# sample 3 token 0 has ratio e^2 = 7.39 > dual-clip 3 with A < 0 (dual-clipped);
# sample 3 token 1 has ratio e^-0.3 < 0.8 with A < 0 (clipped); sample 5 token 2 has ratio
# e^-0.4 < 0.8 with A > 0 (NOT clipped: pessimistic branch is the unclipped one).
DELTA = [
    [0.0, -0.5, 9.0],
    [0.1, 5.0, -0.05],
    [0.5, 0.0, 0.15],
    [2.0, -0.3, 7.0],
    [-9.0, 0.1, 0.0],
    [0.05, -0.1, -0.4],
]
REF = [[o - 0.3 + 0.1 * j for j, o in enumerate(row)] for row in OLD]
EPS, EPS_HI, DUAL, BETA = 0.2, 0.28, 3.0, 0.04


def hand_advantages(rewards, n, mode):
    groups = [rewards[i:i + n] for i in range(0, len(rewards), n)]
    allmean = sum(rewards) / len(rewards)
    batch_std = math.sqrt(sum((r - allmean) ** 2 for r in rewards) / (len(rewards) - 1))
    out = []
    for g in groups:
        m = sum(g) / n
        s = math.sqrt(sum((r - m) ** 2 for r in g) / (n - 1))
        for r in g:
            if mode == "group":
                out.append((r - m) / (s + 1e-6))
            elif mode == "batch":
                out.append((r - m) / (batch_std + 1e-6))
            else:
                out.append(r - m)
    return out


def hand_token_loss(a, old, new, ref, beta, dual):
    ratio = math.exp(new - old)
    clipped_ratio = min(max(ratio, 1 - EPS), 1 + EPS_HI)
    pg = max(-a * ratio, -a * clipped_ratio)
    if dual is not None and a < 0:
        pg = min(pg, -a * dual)
    d = ref - new
    kl = min(max(math.exp(d) - d - 1, -10), 10)
    return pg + beta * kl


def hand_loss(adv, loss_type, beta=BETA, dual=DUAL):
    per_seq, total, count = [], 0.0, 0
    for i in range(6):
        s, c = 0.0, 0
        for j in range(3):
            if MASK[i][j]:
                v = hand_token_loss(adv[i], OLD[i][j], OLD[i][j] + DELTA[i][j], REF[i][j], beta, dual)
                s += v
                c += 1
        total += s
        count += c
        per_seq.append(s / c)
    return total / count if loss_type == "token_mean" else sum(per_seq) / len(per_seq)


def t(x):
    return torch.tensor(x, dtype=torch.float64)


@pytest.mark.parametrize("mode", ["group", "batch", "none"])
def test_advantages_match_hand(mode):
    adv, valid, stats = group_advantages(t(REWARDS), 3, mode)
    assert valid.all()
    exp = hand_advantages(REWARDS, 3, mode)
    assert adv.tolist() == pytest.approx(exp, rel=1e-9, abs=1e-12)
    if mode == "group":  # spot-check the hand formula itself: group 1 has mean 2, std 1
        assert exp[2] == pytest.approx(1 / (1 + 1e-6))
        assert exp[5] == pytest.approx(2 / (math.sqrt(3) + 1e-6))
    assert stats["frac_reward_zero_std"] == 0.0
    assert stats["reward_std"] == pytest.approx((1.0 + math.sqrt(3)) / 2)  # mean of group stds


@pytest.mark.parametrize("loss_type", ["token_mean", "sequence_mean"])
@pytest.mark.parametrize("beta,dual", [(BETA, DUAL), (0.0, None)])
def test_loss_matches_hand(loss_type, beta, dual):
    adv_hand = hand_advantages(REWARDS, 3, "group")
    adv, _, _ = group_advantages(t(REWARDS), 3, "group")
    old = t(OLD)
    new = (old + t(DELTA)).requires_grad_(True)
    loss, m = grpo_loss(new, old, adv, torch.tensor(MASK), ref_logprobs=t(REF), beta=beta,
                        epsilon=EPS, epsilon_high=EPS_HI, dual_clip=dual, loss_type=loss_type)
    assert loss.item() == pytest.approx(hand_loss(adv_hand, loss_type, beta, dual), rel=1e-9)
    # the two aggregations really differ on this batch (masks have different lengths)
    assert hand_loss(adv_hand, "token_mean") != pytest.approx(hand_loss(adv_hand, "sequence_mean"))
    # clip accounting: (0,1), (2,0), (3,1) take the clipped branch; (3,0) is dual-clipped;
    # counted over the 14 unmasked tokens
    n_tok = sum(map(sum, MASK))
    assert m["tokens"] == n_tok
    assert m["clip_ratio"] == pytest.approx(3 / n_tok)
    assert m["dual_clip_ratio"] == pytest.approx((1 / n_tok) if dual else 0.0)
    loss.backward()
    g = new.grad
    mask = torch.tensor(MASK)
    assert (g[~mask] == 0).all()
    if beta == 0:  # clipped tokens get no policy gradient (only KL would pass)
        assert g[0, 1] == 0 and g[2, 0] == 0 and g[3, 1] == 0
        assert g[3, 0] != 0 or dual is not None
    if dual:
        # (3,0) is dual-clipped (a constant), so only the KL term moves it: d/dnew of
        # beta*(e^(ref-new) - (ref-new) - 1) = beta*(1 - e^(ref-new)), divided by the loss's
        # denominator: all 14 tokens (token_mean), or 6 sequences x the 2 tokens of row 3.
        n_seq, row3 = len(MASK), sum(MASK[3])
        denom = n_tok if loss_type == "token_mean" else n_seq * row3
        assert (n_seq, row3) == (6, 2)
        want = beta * (1 - math.exp(REF[3][0] - (OLD[3][0] + DELTA[3][0]))) / denom
        assert g[3, 0].item() == pytest.approx(want, rel=1e-9)
    assert g[5, 2] != 0 and g[0, 0] != 0  # unclipped tokens have a gradient


def test_k3_matches_formula_and_clamps():
    lp, ref = t([-1.0, -2.0, -0.1, 0.0]), t([-1.0, -1.5, -15.0, -20.0])
    out = k3_kl(lp, ref).tolist()
    for o, a, b in zip(out[:3], lp.tolist(), ref.tolist(), strict=False):
        d = b - a
        assert o == pytest.approx(min(math.exp(d) - d - 1, 10.0))
    assert out[0] == 0.0
    assert k3_kl(t([-30.0]), t([0.0])).item() == 10.0  # exp(20) - 21 clamped


def test_invalid_rewards_are_excluded():
    r = t([1.0, float("nan"), 3.0, 5.0, 5.0, float("inf")])
    valid_in = torch.tensor([True, True, True, False, True, True])
    adv, valid, stats = group_advantages(r, 3, "group", valid=valid_in)
    assert valid.tolist() == [True, False, True, False, True, False]
    assert stats["invalid_rewards"] == 3
    # group 0: valid {1, 3} -> mean 2, unbiased std sqrt(2)
    s = math.sqrt(2)
    assert adv.tolist() == pytest.approx([-1 / (s + 1e-6), 0.0, 1 / (s + 1e-6), 0.0, 0.0, 0.0])
    assert torch.isfinite(adv).all()
    assert stats["frac_reward_zero_std"] == 0.5  # group 1 has a single valid sample
    # the loss with invalid rows masked out is finite and ignores them
    lp = torch.zeros(6, 2, requires_grad=True)
    mask = valid.unsqueeze(1).expand(6, 2)
    loss, m = grpo_loss(lp, torch.zeros(6, 2), adv.float(), mask)
    loss.backward()
    assert torch.isfinite(loss) and m["tokens"] == 6
    assert (lp.grad[~valid] == 0).all()


def test_zero_std_group_gives_zero_advantage():
    adv, _, stats = group_advantages(t([2.0, 2.0, 2.0, 0.0, 1.0, 2.0]), 3, "group")
    assert adv[:3].tolist() == [0.0, 0.0, 0.0]
    assert stats["frac_reward_zero_std"] == 0.5


def test_masked_logit_gradients_are_zero():
    """Gradient through log_softmax to the logits is zero at forced/masked positions."""
    torch.manual_seed(0)
    logits = torch.randn(4, 5, 7, requires_grad=True)
    ids = torch.randint(0, 7, (4, 5))
    lp = torch.log_softmax(logits, -1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    mask = torch.ones(4, 5, dtype=torch.bool)
    mask[:, 2] = False
    mask[1] = False
    loss, _ = grpo_loss(lp, lp.detach() - 0.05, torch.tensor([1.0, -1.0, 0.5, -0.5]), mask,
                        ref_logprobs=lp.detach() + 0.1, beta=0.1)
    loss.backward()
    assert (logits.grad[:, 2] == 0).all() and (logits.grad[1] == 0).all()
    assert logits.grad[0, 0].abs().sum() > 0


def test_normalizer_and_errors():
    lp = torch.zeros(2, 2)
    mask = torch.tensor([[True, True], [True, False]])
    loss, _ = grpo_loss(lp, lp, torch.tensor([1.0, 2.0]), mask, normalizer=6)
    assert loss.item() == pytest.approx(-(1 + 1 + 2) / 6)
    with pytest.raises(ValueError, match="ref_logprobs"):
        grpo_loss(lp, lp, torch.ones(2), mask, beta=0.1)
    with pytest.raises(ValueError, match="loss_type"):
        grpo_loss(lp, lp, torch.ones(2), mask, loss_type="bogus")
    with pytest.raises(ValueError, match="group_size"):
        group_advantages(torch.ones(5), 3)
    assert sampled_entropy(t([[-1.0, -3.0]]), torch.tensor([[True, False]])) == 1.0


def _poisoned(x, mask, values):
    """Copy of ``x`` whose masked-out positions cycle through ``values`` (NaN, +-inf)."""
    out = x.clone()
    idx = (~mask).nonzero().tolist()
    for k, (i, j) in enumerate(idx):
        out[i, j] = values[k % len(values)]
    return out


@pytest.mark.parametrize("loss_type", ["token_mean", "sequence_mean"])
def test_non_finite_values_at_masked_positions_change_nothing(loss_type):
    """NaN/inf log-probs (policy, rollout, reference) at masked positions and a NaN advantage
    on a fully masked (excluded) row give the same loss, metrics and gradient as finite values."""
    mask = torch.tensor(MASK)
    mask[4] = False  # an excluded sample: its advantage may be anything
    adv = torch.tensor(hand_advantages(REWARDS, 3, "group"), dtype=torch.float64)
    bad = [float("nan"), float("inf"), -float("inf")]
    runs = []
    for poison in (False, True):
        new = t(OLD) + t(DELTA)
        old, ref, a = t(OLD), t(REF), adv.clone()
        if poison:
            new, old = _poisoned(new, mask, bad), _poisoned(old, mask, bad[::-1])
            ref, a[4] = _poisoned(ref, mask, [-float("inf"), float("nan")]), float("nan")
        new.requires_grad_(True)
        loss, m = grpo_loss(new, old, a, mask, ref_logprobs=ref, beta=BETA, epsilon=EPS,
                            epsilon_high=EPS_HI, dual_clip=DUAL, loss_type=loss_type)
        loss.backward()
        runs.append((loss.item(), m, new.grad))
    (l0, m0, g0), (l1, m1, g1) = runs
    assert math.isfinite(l1) and l1 == pytest.approx(l0, rel=1e-12)
    assert all(math.isfinite(v) for v in m1.values()) and m1 == pytest.approx(m0, rel=1e-12)
    assert torch.isfinite(g1).all() and torch.equal(g1, g0)
    assert (g1[~mask] == 0).all() and (g1[mask] != 0).any()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_low_precision_inputs_give_the_float32_loss(dtype):
    """fp16/bf16 log-probs: the loss is computed (and returned) in float32, equal to the float32
    loss of the same rounded values; advantages of fp16 rewards come back in float32."""
    mask = torch.tensor(MASK)
    adv = torch.tensor(hand_advantages(REWARDS, 3, "group"))
    ins = [t(OLD) + t(DELTA), t(OLD), t(REF)]
    low = [x.to(dtype) for x in ins]
    ref32 = [x.float() for x in low]  # the same rounded values, in float32
    kw = dict(beta=BETA, epsilon=EPS, epsilon_high=EPS_HI, dual_clip=DUAL)
    got, m_got = grpo_loss(low[0], low[1], adv, mask, ref_logprobs=low[2], **kw)
    want, m_want = grpo_loss(ref32[0], ref32[1], adv, mask, ref_logprobs=ref32[2], **kw)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(want.item(), rel=1e-6)
    assert m_got == pytest.approx(m_want, rel=1e-6)
    # rewards 100 apart by 0.5: float16 holds them exactly, the advantages need float32
    r16 = torch.tensor([100.0, 100.5, 101.0, 0.0, 0.0, 3.0], dtype=torch.float16)
    a16, _, _ = group_advantages(r16, 3, "group")
    assert a16.dtype == torch.float32
    assert a16.tolist() == pytest.approx(hand_advantages(r16.double().tolist(), 3, "group"), rel=1e-6)
