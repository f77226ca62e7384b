"""The rollout engine's token sampler (``worldmodels.train.rollout.draw``): both samplers draw
from the given distribution (checked against the probabilities over many draws), never an
index of probability 0, reproducibly from a generator; ``multinomial`` is torch's."""

import pytest
import torch

import worldmodels.train.rollout as rollout_mod
from worldmodels.train.rollout import Segment, draw, rollout

PROBS = torch.tensor([0.05, 0.0, 0.4, 0.15, 0.0, 0.3, 0.1, 0.0])  # zeros inside and at the end


@pytest.mark.parametrize("sampler", ["inverse_cdf", "multinomial"])
def test_draw_frequencies_match_the_probabilities(sampler):
    n = 200_000
    g = torch.Generator().manual_seed(0)
    idx = draw(PROBS.expand(n, -1) * 3.0, g, sampler)  # unnormalised rows are normalised
    assert idx.shape == (n, 1) and idx.dtype == torch.int64
    freq = torch.bincount(idx[:, 0], minlength=len(PROBS)).double() / n
    sigma = (PROBS.double() * (1 - PROBS.double()) / n).sqrt()
    assert torch.all((freq - PROBS.double()).abs() <= 5 * sigma + 1e-12), freq  # 5 sigma, per index
    assert freq[PROBS == 0].sum() == 0  # an index of probability 0 is never drawn


def test_inverse_cdf_reproducible_and_not_multinomial():
    p = torch.rand(16, 50)
    a = draw(p, torch.Generator().manual_seed(3))
    b = draw(p, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    m = draw(p, torch.Generator().manual_seed(3), "multinomial")
    assert torch.equal(m, torch.multinomial(p, 1, generator=torch.Generator().manual_seed(3)))


def test_inverse_cdf_top_of_the_unit_interval_draws_the_last_positive_index(monkeypatch):
    """The largest uniform number times an unnormalised total stays below the total, so the
    draw is the last index of positive probability, never the zero-probability tail (an
    ``allowed`` range)."""
    real_rand = torch.rand
    monkeypatch.setattr(rollout_mod.torch, "rand",
                        lambda *a, **k: torch.full_like(real_rand(*a, **k), 1 - 2 ** -53))
    p = torch.tensor([[0.1, 0.7, 0.2, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3, 0.0, 0.0], [0.3, 2.1, 0.6, 0.0, 0.0],
                      [1e-30, 5.0, 7e-3, 0.0, 0.0]])
    assert draw(p).tolist() == [[2], [2], [2], [2]]


def test_draw_rejects_bad_rows_and_unknown_samplers():
    with pytest.raises(ValueError, match="not positive and finite"):
        draw(torch.tensor([[0.5, float("nan")]]))
    with pytest.raises(ValueError, match="sampler must be one of"):
        draw(PROBS[None], sampler="gumbel")
    model = torch.nn.Linear(1, 1)  # never reached: the argument is checked first
    with pytest.raises(ValueError, match="sampler must be one of"):
        rollout(model, torch.zeros(1, 2, dtype=torch.long), [Segment("generate", 1)], sampler="x")
