"""Hinge-GAN losses against hand values; bf16/fp16 logits (from autocast) give float32 losses.

    OMP_NUM_THREADS=1 .venv/bin/pytest -q tests/video_tokenizers/test_losses.py
"""

import pytest
import torch

from tokenizers_video.losses import hinge_d_loss, hinge_g_loss


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_hinge_losses_hand_values_in_float32(dtype):
    g = torch.Generator().manual_seed(0)
    # many logits near 1000.x: bf16 keeps them only to ~4, and so would a bf16 mean
    real = (1000 + torch.randn(4, 1, 8, 8, generator=g)).to(dtype)
    fake = (1000 + torch.randn(4, 1, 8, 8, generator=g)).to(dtype)
    r, f = real.double().flatten().tolist(), fake.double().flatten().tolist()  # exact values
    want_d = sum(max(0.0, 1 - x) for x in r) / len(r) + sum(max(0.0, 1 + x) for x in f) / len(f)
    want_g = -sum(f) / len(f)
    d, gl = hinge_d_loss(real, fake), hinge_g_loss(fake)
    assert d.dtype == gl.dtype == torch.float32
    assert d.item() == pytest.approx(want_d, rel=1e-6) and gl.item() == pytest.approx(want_g, rel=1e-6)
