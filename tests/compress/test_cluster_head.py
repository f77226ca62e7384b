"""Clustered output head (``worldmodels/compress/cluster_head.py``): K = 1 is the full softmax;
cluster accuracy by hand on a toy with two separated groups of head rows; k-means recovers
separated blobs.

    OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/compress/test_cluster_head.py
"""

import pytest
import torch
import torch.nn.functional as F

from worldmodels.compress import cluster_head as ch


def test_k1_restricted_softmax_is_the_full_one():
    torch.manual_seed(0)
    w, h = torch.randn(30, 8), torch.randn(50, 8)
    y = torch.randint(0, 30, (50,))
    head = ch.build_cluster_head(w, 1, ch.ClusterHeadConfig())
    full = h @ w.T
    torch.testing.assert_close(F.log_softmax(head.restricted_logits(h, w), -1), F.log_softmax(full, -1))
    res = ch.evaluate_cluster_head(head, h, y, w)
    assert res["cluster_accuracy"] == 1.0 and res["top1_agreement"] == 1.0 and res["rows_loaded"] == 1.0
    assert res["loss_delta_inside"] == pytest.approx(0.0, abs=1e-6)
    assert res["loss_full"] == pytest.approx(F.cross_entropy(full, y).item(), rel=1e-6)


def test_cluster_accuracy_by_hand():
    # rows 0-2 around (+10, 0), rows 3-5 around (-10, 0): two clusters
    w = torch.tensor([[10.0, 1], [10, 0], [10, -1], [-10, 1], [-10, 0], [-10, -1]])
    head = ch.build_cluster_head(w, 2, ch.ClusterHeadConfig(pca_dims=2))
    lab = head.labels.tolist()
    assert lab[0] == lab[1] == lab[2] != lab[3] == lab[4] == lab[5]
    h = torch.tensor([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]])
    y = torch.tensor([0, 4, 5, 1])  # inside, outside, inside, outside
    res = ch.evaluate_cluster_head(head, h, y, w)
    assert res["cluster_accuracy"] == 0.5 and res["cluster_accuracy_top1"] == 1.0
    assert res["top1_agreement"] == 1.0 and res["rows_loaded"] == 0.5
    restricted = head.restricted_logits(h, w)
    assert torch.isinf(restricted[0, 3:]).all() and torch.isfinite(restricted[0, :3]).all()


def test_kmeans_recovers_blobs_and_checks_k():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0, 0], [20, 0, 0], [0, 20, 0]])
    x = torch.cat([c + torch.randn(40, 3, generator=g) for c in centres])
    labels, _ = ch.kmeans(x, 3, seed=1)
    groups = [set(labels[i * 40:(i + 1) * 40].tolist()) for i in range(3)]
    assert all(len(s) == 1 for s in groups) and len(set.union(*groups)) == 3
    with pytest.raises(ValueError, match="K=5"):
        ch.kmeans(x[:4], 5)


def test_scorer_fitting_keeps_accuracy_in_range():
    torch.manual_seed(1)
    w, h = torch.randn(40, 6), torch.randn(200, 6)
    cfg = ch.ClusterHeadConfig(epochs=5)
    head = ch.build_cluster_head(w, 4, cfg)
    ch.fit_scorer(head, h, w, cfg)
    res = ch.evaluate_cluster_head(head, h, (h @ w.T).argmax(-1), w)
    assert 0.0 <= res["cluster_accuracy"] <= 1.0 and res["cluster_accuracy"] == res["cluster_accuracy_top1"]
    assert sum(res["cluster_sizes"]) == 40 and res["k"] == 4
