"""Evaluation helpers: changed-pixel error and metric accumulation against hand-computed values."""

import math

import pytest
import torch

from tokenizers_video.evaluate import _Acc, _Changed


def test_changed_pixels_error_matches_hand_computation():
    ctx = torch.zeros(1, 3, 4, 4)
    target = ctx.clone()
    target[0, :, 0, 0] = 1.0  # one pixel moved
    pred = target.clone()
    pred[0, :, 0, 0] = 0.5  # half-wrong on it
    pred[0, :, 3, 3] = 0.9  # an error on an unchanged pixel: not counted
    ch = _Changed()
    ch.add(pred, target, ctx)
    r = ch.result()
    assert r["changed_pixels"] == 1
    assert math.isclose(r["changed_mse"], 0.25, rel_tol=1e-6)
    assert math.isclose(r["changed_psnr"], 10 * math.log10(1 / (0.25 + 1e-8)), rel_tol=1e-6)


def test_accumulator_means_and_usage():
    acc = _Acc({"mse": lambda p, t: ((p - t) ** 2).flatten(1).mean(1)}, vocab=4)
    acc.add(torch.zeros(2, 3, 2, 2), torch.ones(2, 3, 2, 2), torch.tensor([0, 0, 1]))
    acc.add(torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2), torch.tensor([1]))
    r = acc.result()
    assert r["frames"] == 3 and math.isclose(r["mse"], 2 / 3)
    assert r["codebook_usage"] == 0.5 and math.isclose(r["perplexity"], 2.0)


def test_changed_pixel_error_ignores_non_finite_pixels_outside_the_changed_region():
    """Only pixels that moved count; a NaN prediction elsewhere must not reach the sum."""
    from tokenizers_video.evaluate import _Changed

    context = torch.zeros(1, 3, 4, 4)
    target = context.clone()
    target[..., 0, 0] = 1.0                    # one moved pixel
    pred = torch.full_like(target, float("nan"))
    pred[..., 0, 0] = 0.5                      # off by 0.5 in every channel there
    c = _Changed(threshold=0.1)
    c.add(pred, target, context)
    res = c.result()
    assert res["changed_pixels"] == 1
    assert res["changed_mse"] == pytest.approx(0.25)   # (3 * 0.25) / 3 channels / 1 pixel
