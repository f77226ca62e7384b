"""GRPO's entropy bonus (``entropy_coef``): the full-vocabulary entropy of the masked,
temperature-scaled policy, its place in the loss and its gradient, checked against hand values
and an independent per-row computation with ``torch.distributions.Categorical``; the text-game
presets.

    OMP_NUM_THREADS=1 .venv/bin/pytest -q tests/train/test_grpo_entropy.py
"""

import copy
import math
import sys
from pathlib import Path

import pytest
import torch
from torch.distributions import Categorical

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grpo_toys import ALLOWED, EOS, EOT, StopReward, StopTask, tiny_model  # noqa: E402

from worldmodels.tasks.base import Segment  # noqa: E402
from worldmodels.train.grpo import GRPOTrainer  # noqa: E402
from worldmodels.train.grpo_config import PRESETS, GRPOConfig, grpo_preset  # noqa: E402
from worldmodels.train.grpo_loss import grpo_loss  # noqa: E402
from worldmodels.train.rollout import entropy_from_logits, sequence_logprobs  # noqa: E402

INF = float("inf")


# ------------------------------------------------------------------------ the entropy itself
def test_entropy_from_logits_hand_values():
    # uniform over 4: ln 4; one-hot (others -inf): 0; two of three allowed, equal: ln 2
    z = torch.tensor([[0.0, 0.0, 0.0, 0.0], [3.0, -INF, -INF, -INF], [1.0, 1.0, -INF, -INF]])
    torch.testing.assert_close(entropy_from_logits(z), torch.tensor([math.log(4), 0.0, math.log(2)]))
    # p = (0.7311, 0.2689) for logits (1, 0): H = -(p ln p + q ln q)
    p = 1 / (1 + math.exp(-1))
    want = -(p * math.log(p) + (1 - p) * math.log(1 - p))
    assert float(entropy_from_logits(torch.tensor([1.0, 0.0]))) == pytest.approx(want, rel=1e-6)


def test_entropy_gradient_by_hand_and_finite_under_masks():
    # H(z1, z2) with d = z1 - z2, p = sigmoid(d): dH/dz1 = -d p (1 - p) = -dH/dz2
    z = torch.tensor([1.0, 0.0, -INF], requires_grad=True)
    entropy_from_logits(z).backward()
    p = 1 / (1 + math.exp(-1))
    torch.testing.assert_close(z.grad, torch.tensor([-p * (1 - p), p * (1 - p), 0.0]))
    # against torch's Categorical on random logits, masked ones included
    g = torch.Generator().manual_seed(0)
    raw = torch.randn(3, 5, 11, generator=g, dtype=torch.float64)
    allowed = torch.zeros(11, dtype=torch.bool)
    allowed[2:9] = True
    a = raw.clone().requires_grad_(True)
    b = raw.clone().requires_grad_(True)
    mine = entropy_from_logits(a.masked_fill(~allowed, -INF))
    ref = Categorical(logits=b[..., allowed]).entropy()
    torch.testing.assert_close(mine, ref)
    w = torch.randn(3, 5, generator=g, dtype=torch.float64)
    (mine * w).sum().backward()
    (ref * w).sum().backward()
    assert torch.isfinite(a.grad).all() and (a.grad[..., ~allowed] == 0).all()
    torch.testing.assert_close(a.grad, b.grad)


def test_sequence_logprobs_entropy_is_the_masked_tempered_distributions():
    torch.manual_seed(0)
    model = tiny_model().eval()
    B, P = 3, 4
    seqs = torch.randint(3, 20, (B, P + 7))
    seqs[0, P + 1] = EOS  # row 0 stops at its 2nd answer token: the 3rd is padding
    segs = [Segment("generate", 3, allowed=ALLOWED, stop_ids=(EOS, EOT)),
            Segment("force", 2, tokens=seqs[:, P + 3:P + 5]),
            Segment("generate", 2, allowed=(5, 15))]
    T = 0.7
    lp0 = sequence_logprobs(model, seqs, P, segs, temperature=T)
    lp, ent = sequence_logprobs(model, seqs, P, segs, temperature=T, return_entropy=True)
    assert torch.equal(lp, lp0)  # the log-probs are unchanged by asking for the entropy
    am = torch.ones_like(seqs)
    am[0, P + 2] = 0  # the post-stop pad is never attended to
    with torch.no_grad():
        logits = model(seqs, attention_mask=am, position_ids=(am.cumsum(1) - 1).clamp(min=0)
                       ).logits[:, P - 1:-1].double()  # (B, 7, V): predicts the answer tokens
    want = torch.zeros(B, 7, dtype=torch.float64)
    for j, (lo, hi) in [(0, ALLOWED), (1, ALLOWED), (2, ALLOWED), (5, (5, 15)), (6, (5, 15))]:
        want[:, j] = Categorical(logits=logits[:, j, lo:hi] / T).entropy()
    want[0, 2] = 0.0  # after row 0's stop token
    assert ent.dtype == torch.float32
    torch.testing.assert_close(ent.double(), want, rtol=1e-5, atol=1e-6)
    assert (ent[:, 3:5] == 0).all()  # forced tokens


# ---------------------------------------------------------------------------- the loss
def test_loss_subtracts_coef_times_the_aggregated_entropy():
    g = torch.Generator().manual_seed(1)
    lp = -torch.rand(3, 4, generator=g, dtype=torch.float64)
    old = lp + 0.1 * torch.randn(3, 4, generator=g, dtype=torch.float64)
    adv = torch.tensor([1.0, -0.5, 2.0], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    ent = torch.rand(3, 4, generator=g, dtype=torch.float64) * 3
    ent[0, 3] = float("nan")  # masked: never reaches the loss
    for loss_type, agg in (("token_mean", lambda h: h[mask].sum() / mask.sum()),
                           ("sequence_mean", lambda h: sum(h[i][mask[i]].mean() for i in range(3)) / 3)):
        base, m0 = grpo_loss(lp, old, adv, mask, loss_type=loss_type, entropy=ent)
        with_bonus, m1 = grpo_loss(lp, old, adv, mask, loss_type=loss_type, entropy=ent, entropy_coef=0.3)
        assert float(with_bonus) == pytest.approx(float(base) - 0.3 * float(agg(ent)), rel=1e-12)
        assert m0["entropy"] == m1["entropy"] == pytest.approx(float(ent[mask].mean()), rel=1e-12)
    _, m = grpo_loss(lp, old, adv, mask)
    assert "entropy" not in m  # not given: not logged


def test_loss_gradient_with_entropy_bonus_by_hand():
    # one token, advantage 0 (no policy-gradient term): loss = -c * H(z); dL/dz1 = c d p (1-p)
    z = torch.tensor([[[1.0, 0.0]]], requires_grad=True)
    lp = torch.log_softmax(z, -1)[..., 0]
    loss, _ = grpo_loss(lp, lp.detach(), torch.zeros(1), torch.ones(1, 1, dtype=torch.bool),
                        entropy=entropy_from_logits(z), entropy_coef=0.5)
    loss.backward()
    p = 1 / (1 + math.exp(-1))
    torch.testing.assert_close(z.grad, torch.tensor([[[0.5 * p * (1 - p), -0.5 * p * (1 - p)]]]))


def test_loss_rejects_missing_or_misshapen_entropy():
    x = torch.zeros(2, 3)
    m = torch.ones(2, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="entropy_coef != 0 needs entropy"):
        grpo_loss(x, x, torch.zeros(2), m, entropy_coef=1e-3)
    with pytest.raises(ValueError, match="entropy .* must have the"):
        grpo_loss(x, x, torch.zeros(2), m, entropy=torch.zeros(2, 4), entropy_coef=1e-3)


# ------------------------------------------------------------------------- the trainer
def _cfg(**kw):
    base = dict(num_generations=4, prompts_per_step=4, mini_batch_prompts=4, learning_rate=1e-3,
                beta=0.05, max_steps=1, device="cpu", eval_steps=0, save_steps=0, max_grad_norm=0.0,
                temperature=0.8, dual_clip=None)
    base.update(kw)
    return GRPOConfig(**base)


def _reference(start, chunks, c: GRPOConfig):
    """The update's gradient and mean entropy, one unpadded row at a time, with Categorical
    on the model's raw logits (independent of sequence_logprobs and grpo_loss)."""
    model, ref = copy.deepcopy(start).train(), copy.deepcopy(start).eval()
    lo, hi = ALLOWED
    rows = []
    for ch in chunks:
        P = ch.prompt_len
        for i in range(ch.sequences.shape[0]):
            prompt = ch.sequences[i, :P][ch.attention_mask[i, :P].bool()]
            answer = ch.sequences[i, P:]
            stop = torch.isin(answer, torch.tensor([EOS, EOT])).nonzero()
            n = int(stop[0]) + 1 if len(stop) else answer.numel()
            if bool(ch.valid[i]):
                rows.append((ch, i, prompt, answer[:n]))
    denom = sum(len(a) for *_, a in rows)
    ent_sum = 0.0
    for ch, i, prompt, answer in rows:
        n, k = len(answer), len(prompt)
        seq = torch.cat([prompt, answer])[None]
        dist = Categorical(logits=model(seq).logits[0, k - 1:k - 1 + n, lo:hi] / c.temperature)
        with torch.no_grad():
            ref_lp = Categorical(logits=ref(seq).logits[0, k - 1:k - 1 + n, lo:hi] / c.temperature
                                 ).log_prob(answer - lo)
        logp, ent = dist.log_prob(answer - lo), dist.entropy()
        ratio = torch.exp(logp - ch.old_logprobs[i, :n])
        a = ch.advantages[i]
        pg = torch.maximum(-a * ratio, -a * ratio.clamp(1 - c.epsilon, 1 + c.epsilon))
        d = ref_lp - logp
        kl = torch.exp(d) - d - 1
        (((pg + c.beta * kl - c.entropy_coef * ent).sum()) / denom).backward()
        ent_sum += float(ent.detach().sum())
    grads = {nm: p.grad.detach().clone() for nm, p in model.named_parameters() if p.grad is not None}
    return grads, ent_sum / denom


@pytest.mark.parametrize("coef", [0.0, 0.2])
def test_trainer_gradient_and_logged_entropy_match_a_per_row_computation(coef):
    start = tiny_model()
    c = _cfg(entropy_coef=coef)
    tr = GRPOTrainer(c, StopTask(), copy.deepcopy(start), StopReward())
    m = tr.train_step()
    want, want_ent = _reference(start, tr._last_chunks, c)
    got = {nm: p.grad for nm, p in tr.model.named_parameters() if p.grad is not None}
    assert got.keys() == want.keys() and len(got) > 0
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-4, atol=1e-7, msg=name)
    # full-vocabulary entropy under the policy being updated (one update: the rollout policy)
    assert m["entropy"] == pytest.approx(want_ent, rel=1e-5)
    assert "entropy_sampled" in m and m["entropy_sampled"] > 0  # the Monte-Carlo estimate


def test_entropy_bonus_changes_the_update():
    runs = []
    for coef in (0.0, 0.5):
        tr = GRPOTrainer(_cfg(entropy_coef=coef), StopTask(), tiny_model(), StopReward())
        tr.train_step()
        runs.append(tr.model.lm_head.weight.grad.clone())
    assert not torch.allclose(runs[0], runs[1])


# -------------------------------------------------------------------------- the presets
def test_text_game_preset_is_rlvr_worlds_text_run():
    c = grpo_preset("text-game")
    assert (c.num_generations, c.prompts_per_step, c.mini_batch_prompts, c.num_iterations) == (5, 128, 64, 1)
    assert (c.learning_rate, c.beta, c.entropy_coef, c.epsilon) == (1e-6, 1e-3, 1e-3, 0.2)
    assert c.dual_clip is None and c.epsilon_high is None
    assert c.temperature == 1.0 and c.top_p is None and c.top_k is None  # top-p 1, top-k -1
    assert (c.loss_type, c.scale_rewards, c.max_grad_norm) == ("token_mean", "group", 1.0)
    assert (c.eval_steps, c.save_steps) == (20, 20)
    tiny = grpo_preset("text-game-tiny")
    assert tiny.num_generations == 5 and tiny.entropy_coef == 1e-3 and tiny.dual_clip is None
    assert tiny.prompts_per_step <= 8
    assert GRPOConfig().entropy_coef == 0.0  # video: no entropy bonus
    assert {"text-game", "text-game-tiny"} <= set(PRESETS)


@pytest.mark.parametrize("bad", [-1e-3, float("inf"), float("nan")])
def test_entropy_coef_validated(bad):
    with pytest.raises(ValueError, match="entropy_coef must be a finite number >= 0"):
        GRPOConfig(entropy_coef=bad)


def test_rlvr_text_game_offers_the_presets():
    from typer.testing import CliRunner

    from worldmodels.commands.rlvr import app

    res = CliRunner().invoke(app, ["text-game", "--help"], terminal_width=200)
    assert res.exit_code == 0
    assert "text-game-tiny" in res.output and "grpo.entropy_coef" in res.output
