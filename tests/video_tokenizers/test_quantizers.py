"""FSQ / VQ quantizers and the chunked nearest-code search they use."""

import itertools

import pytest
import torch

from kernels.vq import nearest_code
from tokenizers_video.quantizers import FSQ, VQ


@pytest.mark.parametrize("levels", [[7, 5, 5, 5, 5], [8, 5, 5, 5], [2, 3]])
def test_fsq_index_code_bijection(levels):
    fsq = FSQ(levels)
    n = fsq.codebook_size
    assert n == torch.tensor(levels).prod().item()
    ids = torch.arange(n)
    codes = fsq.indices_to_codes(ids)  # (n,D)
    assert codes.shape == (n, len(levels))
    assert codes.min() >= -1 and codes.max() <= 1
    assert torch.equal(fsq.codes_to_indices(codes), ids)
    # every code is distinct and lies on the per-channel grid of levels[i] values
    assert len({tuple(c.tolist()) for c in codes}) == n
    for d, lv in enumerate(levels):
        assert codes[:, d].unique().numel() == lv


def test_fsq_quantize_ranges_and_grid():
    fsq = FSQ([7, 5, 5, 5, 5])
    z = torch.randn(4096, 5) * 5  # far outside the bounds too
    zq, ids, aux = fsq(z)
    assert ids.dtype == torch.long and ids.min() >= 0 and ids.max() < fsq.codebook_size
    assert zq.abs().max() <= 1
    assert torch.allclose(fsq.indices_to_codes(ids), zq)
    # all 7 values of the first channel are reachable from random inputs
    assert (zq[:, 0] * 3).round().unique().numel() == 7
    assert 0 < aux["usage"] <= 1 and aux["perplexity"] >= 1


def test_fsq_even_levels_symmetric_enough():
    fsq = FSQ([8])
    zq = fsq.quantize(torch.linspace(-20, 20, 10001).unsqueeze(1))
    vals = sorted(set((zq * 4).round().squeeze(1).tolist()))
    assert vals == list(range(-4, 4))  # 8 values: -4..3 (scaled by half-width 4)


def test_fsq_straight_through_gradient():
    fsq = FSQ([5, 5])
    z = torch.randn(10, 2, requires_grad=True)
    zq, _, _ = fsq(z)
    zq.sum().backward()
    assert z.grad is not None and (z.grad.abs() > 0).all()


@pytest.mark.parametrize("ema", [True, False])
def test_vq_indices_in_range_and_nearest(ema):
    torch.manual_seed(0)
    vq = VQ(codebook_size=37, dim=6, ema=ema)
    z = torch.randn(3, 5, 6)
    zq, ids, aux = vq.eval()(z)
    assert ids.shape == (3, 5) and ids.min() >= 0 and ids.max() < 37
    brute = torch.cdist(z.reshape(-1, 6), vq.codebook).argmin(1)
    assert torch.equal(ids.reshape(-1), brute)
    assert torch.allclose(zq, vq.codebook[ids])
    assert aux["loss"] >= 0


@pytest.mark.parametrize("ema", [True, False])
def test_vq_straight_through_reaches_input(ema):
    vq = VQ(codebook_size=16, dim=4, ema=ema).train()
    z = torch.randn(32, 4, requires_grad=True)
    zq, _, aux = vq(z)
    (zq.sum() + aux["loss"]).backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    if not ema:
        assert vq.embedding.grad is not None and vq.embedding.grad.abs().sum() > 0


def test_vq_ema_moves_codes_towards_data():
    torch.manual_seed(0)
    vq = VQ(codebook_size=4, dim=2, ema=True, decay=0.5).train()
    data = torch.tensor([[5.0, 5.0]]).repeat(64, 1) + 0.01 * torch.randn(64, 2)
    _, ids, _ = vq(data)
    used = ids.unique()
    before = (vq.codebook[used] - 5).norm(dim=1).clone()
    for _ in range(10):
        vq(data)
    after = (vq.codebook[used] - 5).norm(dim=1)
    assert (after < before).all() and after.max() < 0.5


def test_dead_code_restart_revives_unused_codes():
    torch.manual_seed(0)
    vq = VQ(codebook_size=32, dim=3, ema=True, decay=0.5, restart_threshold=0.5).train()
    with torch.no_grad():
        vq.embedding[1:] += 100.0  # only code 0 near the data: 31 dead codes
        vq.ema_sum.copy_(vq.embedding)
    data = torch.randn(256, 3)
    for _ in range(8):
        _, ids, aux = vq(data)
    assert ids.unique().numel() == 1
    revived = vq.restart_dead_codes(torch.Generator().manual_seed(0))
    assert revived >= 30
    _, ids, _ = vq(data)
    assert ids.unique().numel() > 10  # re-seeded codes now win assignments
    assert vq.codebook.abs().max() < 50  # the far-away codes were replaced by data points


def test_nearest_code_chunked_equals_brute_force():
    torch.manual_seed(0)
    x = torch.randn(1000, 8)
    cb = torch.randn(300, 8)
    idx, dist = nearest_code(x, cb)
    full = ((x[:, None, :] - cb[None]) ** 2).sum(-1)  # (N,K) brute force
    bidx = full.argmin(1)
    mism = idx != bidx
    # ties (or float ties) tolerated: the chosen code must be as near as the brute-force one
    assert torch.allclose(full[torch.arange(1000), idx], full[torch.arange(1000), bidx], atol=1e-4)
    assert mism.float().mean() < 0.01
    assert torch.allclose(dist, full.min(1).values, atol=1e-3)
    # and with a tiny budget (many chunks) the answer is the same
    from kernels.vq import nearest_code_reference
    idx2, _ = nearest_code_reference(x, cb, budget_elements=300 * 7)
    assert torch.equal(idx, idx2)


def test_nearest_code_ties_pick_an_equal_code():
    cb = torch.tensor([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    idx, _ = nearest_code(torch.tensor([[2.0, 0.0]]), cb)
    assert idx.item() in (0, 1)


def test_fsq_rejects_bad_levels():
    for bad in ([], [1, 5], [0]):
        with pytest.raises(ValueError, match="levels"):
            FSQ(bad)
    with pytest.raises(ValueError, match="last dim"):
        FSQ([5, 5])(torch.zeros(3, 4))


def test_fsq_property_all_roundtrip_random_levels():
    for levels in itertools.islice(itertools.product([2, 3, 4, 5], repeat=3), 0, 64, 7):
        fsq = FSQ(list(levels))
        ids = torch.randint(0, fsq.codebook_size, (50,))
        assert torch.equal(fsq.codes_to_indices(fsq.indices_to_codes(ids)), ids)


def test_fsq_level_two_is_finite_binary_grid():
    """Level 2 (the smallest accepted) used to give NaN codes: its shift was atanh(1/(1-eps)).
    Now channel 0 takes exactly the two values {-1, 0} (digits 0, 1), split at z = -shift,
    and ids round-trip through the codes."""
    fsq = FSQ([2, 3])
    z = torch.linspace(-6, 6, 401)
    zq, ids, _ = fsq(torch.stack([z, z], dim=1))
    assert torch.isfinite(zq).all()
    assert set(zq[:, 0].tolist()) == {-1.0, 0.0} and set(zq[:, 1].tolist()) == {-1.0, 0.0, 1.0}
    assert int(ids.min()) == 0 and int(ids.max()) == fsq.codebook_size - 1 == 5
    assert torch.equal(fsq.indices_to_codes(ids), zq)
    # monotone: large negative z -> -1, large positive z -> 0 on the binary channel
    assert zq[0, 0] == -1.0 and zq[-1, 0] == 0.0
    assert bool((zq[1:, 0] >= zq[:-1, 0]).all())
