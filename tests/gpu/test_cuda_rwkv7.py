"""RWKV-7 on CUDA: fla's Triton kernels against our CPU path (float32).

Marked ``gpu``: the default suite deselects it; on a lent device with the ``rwkv-gpu`` extra
(``pip install flash-linear-attention``)::

    python -m pytest -q -m gpu tests/gpu/test_cuda_rwkv7.py

- WKV-7 kernels: fla's ``chunk_rwkv7`` (T > 1) and ``fused_recurrent_rwkv7`` (one token),
  through our dispatch (which transposes the state to fla's [K, V] layout), equal our chunked
  CPU form — outputs and final state, from a zero and from a random initial state (fla#351:
  ``chunk_rwkv7`` once differed when ``initial_state`` was set), at T = 1, 63, 64 (fla#179),
  200 — and their gradients match ours.
- The whole model: logits of a random RWKV-7 on CUDA (fla) equal the CPU logits, also for a
  prefill + decode through the cache and a left-padded batch; our PyTorch path on CUDA
  (``use_fla=False``) equals the CPU too.
"""

import math
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from worldmodels.train.rollout_cache import output_cache

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))


def fla_or_skip():
    from worldmodels.models.rwkv7_ops import fla_ops

    if fla_ops() is None:
        pytest.skip("flash-linear-attention (rwkv-gpu extra) is not installed")


def inputs(B=2, T=64, H=2, N=64, seed=0, state=True):
    g = torch.Generator().manual_seed(seed)
    r, k, v = (torch.randn(B, T, H, N, generator=g) for _ in range(3))
    log_w = -math.exp(-0.5) * torch.rand(B, T, H, N, generator=g)
    kk = F.normalize(torch.randn(B, T, H, N, generator=g), dim=-1)
    a = torch.rand(B, T, H, N, generator=g)
    S0 = torch.randn(B, H, N, N, generator=g) * 0.1 if state else None
    return [r, log_w, k, v, -kk, kk * a], S0


@pytest.mark.parametrize("T", [1, 63, 64, 200])
@pytest.mark.parametrize("with_state", [False, True])
def test_fla_kernels_equal_cpu_chunked(T, with_state):
    fla_or_skip()
    from worldmodels.models.rwkv7_ops import wkv7, wkv7_chunked

    x, S0 = inputs(T=T, seed=T, state=with_state)
    y_ref, S_ref = wkv7_chunked(*x, S0, chunk_size=32)
    dev = [t.cuda() for t in x]
    y, S = wkv7(*dev, None if S0 is None else S0.cuda(), mode="chunk", use_fla=True)
    scale = y_ref.abs().max()
    torch.testing.assert_close(y.cpu() / scale, y_ref / scale, atol=2e-3, rtol=0)
    torch.testing.assert_close(S.cpu(), S_ref, atol=2e-3, rtol=2e-3)


def test_fla_gradients_equal_cpu_gradients():
    fla_or_skip()
    from worldmodels.models.rwkv7_ops import wkv7, wkv7_chunked

    x, S0 = inputs(T=96, seed=3)
    gy = torch.randn(2, 96, 2, 64)

    def grads(device, fn):
        leaves = [t.to(device).requires_grad_() for t in x + [S0]]
        y, S = fn(*leaves)
        ((y * gy.to(device)).sum() + S.sum()).backward()
        return [t.grad.cpu() for t in leaves]

    g_cpu = grads("cpu", lambda *z: wkv7_chunked(*z, chunk_size=32))
    g_gpu = grads("cuda", lambda *z: wkv7(*z, mode="chunk", use_fla=True))
    for name, a, b in zip(("r", "log_w", "k", "v", "a", "b", "state"), g_gpu, g_cpu, strict=True):
        scale = b.abs().max()
        torch.testing.assert_close(a / scale, b / scale, atol=5e-3, rtol=0, msg=name)


@pytest.mark.parametrize("use_fla", [True, False])
def test_model_on_cuda_equals_cpu(use_fla):
    if use_fla:
        fla_or_skip()
    from rwkv7_toys import random_model

    cpu = random_model(1, C=128, H=2, L=2, vocab=50, D=32, F=256)
    gpu = random_model(1, C=128, H=2, L=2, vocab=50, D=32, F=256, use_fla=use_fla).cuda()
    x = torch.randint(0, 50, (3, 80), generator=torch.Generator().manual_seed(0))
    mask = torch.ones(3, 80, dtype=torch.long)
    mask[1, :30] = 0  # a left-padded row
    with torch.no_grad():
        ref = cpu(x, attention_mask=mask).logits
        got = gpu(x.cuda(), attention_mask=mask.cuda()).logits.cpu()
        torch.testing.assert_close(got, ref, atol=2e-3, rtol=1e-3)
        out = gpu(x[:, :70].cuda(), attention_mask=mask[:, :70].cuda(), use_cache=True)
        steps = [out.logits[:, -1]]
        for t in range(70, 80):
            steps.append(gpu(x[:, t:t + 1].cuda(), attention_mask=mask[:, :t + 1].cuda(),
                             cache=output_cache(out)).logits[:, -1])
        torch.testing.assert_close(torch.stack(steps, 1).cpu(), ref[:, 69:], atol=2e-3, rtol=1e-3)
