"""RWKV-Lite's clustered (hierarchical) output head: predict a cluster of tokens, then score
only that cluster's rows of the head.

Clusters (RWKV-Lite ``svd.py::decompose_emb``, seeds.md §7): k-means with K clusters on the
PCA projections of the embedding rows (theirs: ``torch.pca_lowrank(q=256)``, 200 components,
sklearn ``KMeans(200)``). Here the rows are the output head's (``lm_head.weight``, what the
head scores) and k-means is a small torch implementation (k-means++ seeding, Lloyd steps;
sklearn is not a dependency). The cluster scorer is a linear map hidden -> K initialised with
each cluster's mean head row and fitted (cross-entropy, Adam) to the cluster of the full head's
top-1 token on training hidden states (RWKV-Lite ships a trained ``head_l1``; its training is
not in the released code, so this fitting is our assumption).

Measured (:func:`evaluate_cluster_head`), on held-out labelled positions: cluster accuracy
(predicted cluster == the label's cluster; and == the full head's top-1 token's cluster),
top-1 agreement (argmax of the restricted softmax == argmax of the full one), and the loss of
the cluster-restricted softmax (log-softmax over the predicted cluster's rows only) against the
full loss on the positions whose label lies in the predicted cluster (elsewhere the restricted
head gives the label probability 0: an infinite loss; their share is ``1 - cluster_accuracy``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class ClusterHeadConfig:
    """Clustered head settings (``--set cluster.*``).

    k: clusters of the output head's rows (``--cluster-head K``; RWKV-Lite: 200); 0 = off.
    pca_dims: PCA components the rows are clustered on (RWKV-Lite: 200 of q=256); capped at the
        hidden size.
    iters: Lloyd iterations of k-means.
    epochs: passes of the cluster scorer's fitting over the training hidden states (0: the
        mean-row initialisation only).
    lr: Adam learning rate of the cluster scorer.
    batch_size: positions per scorer step.
    max_tokens: most positions collected per split.
    seed: k-means seeding and the scorer's data order.
    """

    k: int = 0
    pca_dims: int = 200
    iters: int = 50
    epochs: int = 20
    lr: float = 1e-2
    batch_size: int = 256
    max_tokens: int = 4096
    seed: int = 0

    def __post_init__(self) -> None:
        if self.k < 0:
            raise ValueError(f"cluster.k (--cluster-head) must be >= 0, got {self.k}")
        if min(self.pca_dims, self.iters, self.batch_size, self.max_tokens) < 1 or self.epochs < 0 \
                or not self.lr > 0:
            raise ValueError(f"cluster: pca_dims, iters, batch_size, max_tokens >= 1, epochs >= 0 "
                             f"and lr > 0 required, got {self}")


def pca_project(rows: Tensor, dims: int) -> Tensor:
    """(V, C) -> (V, min(dims, C, V)): the centred rows on their leading principal directions."""
    x = rows.float() - rows.float().mean(0, keepdim=True)
    q = min(dims, x.shape[0], x.shape[1])
    _, _, V = torch.linalg.svd(x, full_matrices=False)
    return x @ V[:q].t()


def kmeans(x: Tensor, k: int, iters: int = 50, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Lloyd's k-means of ``x`` (N, D) with k-means++ seeding: (labels (N,) int64, centres (k, D)).
    An emptied cluster is re-seeded at the point farthest from its centre. Raises ValueError
    unless 1 <= k <= N."""
    N = x.shape[0]
    if not 1 <= k <= N:
        raise ValueError(f"k-means needs 1 <= K <= rows ({N}), got K={k}")
    g = torch.Generator().manual_seed(seed)
    x = x.float()
    centres = x[torch.randint(N, (1,), generator=g)]
    while centres.shape[0] < k:
        d2 = torch.cdist(x, centres).min(1).values ** 2
        p = d2 / d2.sum() if d2.sum() > 0 else torch.full_like(d2, 1.0 / N)
        centres = torch.cat([centres, x[torch.multinomial(p, 1, generator=g)]])
    labels = torch.zeros(N, dtype=torch.long)
    for _ in range(iters):
        dist = torch.cdist(x, centres)
        labels = dist.argmin(1)
        new = torch.zeros_like(centres).index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=k)
        for c in torch.nonzero(counts == 0).flatten().tolist():
            far = int(dist.min(1).values.argmax())
            new[c], counts[c], labels[far] = x[far], 1, c
        new = new / counts[:, None].clamp(min=1)
        if torch.allclose(new, centres):
            break
        centres = new
    return labels, centres


class ClusterHead(nn.Module):
    """Token clusters of a head and the scorer that picks one.

    labels: (V,) cluster of each token; scorer: Linear(C, K, no bias). ``restricted_logits(h,
    head_weight)`` gives (N, V) logits that are -inf outside each position's predicted cluster.
    """

    def __init__(self, labels: Tensor, head_weight: Tensor):
        super().__init__()
        k = int(labels.max()) + 1
        self.register_buffer("labels", labels.long())
        self.scorer = nn.Linear(head_weight.shape[1], k, bias=False)
        with torch.no_grad():
            mean = torch.zeros(k, head_weight.shape[1]).index_add_(0, labels, head_weight.float())
            self.scorer.weight.copy_(mean / torch.bincount(labels, minlength=k).clamp(min=1)[:, None])

    @property
    def k(self) -> int:
        return self.scorer.out_features

    def predict(self, hidden: Tensor) -> Tensor:
        """(N,) predicted cluster of each hidden state (N, C)."""
        return self.scorer(hidden.float()).argmax(-1)

    def restricted_logits(self, hidden: Tensor, head_weight: Tensor) -> Tensor:
        """(N, V): the full head's logits where the token is in the predicted cluster, else -inf
        (only those rows would be loaded and multiplied)."""
        logits = hidden.float() @ head_weight.float().t()
        inside = self.labels[None, :] == self.predict(hidden)[:, None]
        return logits.masked_fill(~inside, float("-inf"))


def build_cluster_head(head_weight: Tensor, k: int, cfg: ClusterHeadConfig) -> ClusterHead:
    """k-means of the PCA-projected head rows (V, C) into ``k`` clusters -> ClusterHead."""
    labels, _ = kmeans(pca_project(head_weight.detach(), cfg.pca_dims), k, cfg.iters, cfg.seed)
    return ClusterHead(labels, head_weight.detach().float())


def fit_scorer(head: ClusterHead, hidden: Tensor, head_weight: Tensor, cfg: ClusterHeadConfig) -> None:
    """Fit ``head.scorer`` to the cluster of the full head's top-1 token at each hidden state."""
    target = head.labels[(hidden.float() @ head_weight.float().t()).argmax(-1)]
    opt = torch.optim.Adam(head.scorer.parameters(), lr=cfg.lr)
    g = torch.Generator().manual_seed(cfg.seed)
    for _ in range(cfg.epochs):
        order = torch.randperm(hidden.shape[0], generator=g)
        for i in range(0, hidden.shape[0], cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            loss = F.cross_entropy(head.scorer(hidden[idx].float()), target[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()


@torch.no_grad()
def evaluate_cluster_head(head: ClusterHead, hidden: Tensor, labels: Tensor, head_weight: Tensor) -> dict:
    """Metrics of the module docstring on hidden states (N, C) with next-token ``labels`` (N,)."""
    full = hidden.float() @ head_weight.float().t()
    restricted = head.restricted_logits(hidden, head_weight)
    pred = head.predict(hidden)
    inside = head.labels[labels] == pred
    full_nll = F.cross_entropy(full, labels, reduction="none")
    res = {"k": head.k, "positions": int(labels.numel()),
           "cluster_accuracy": inside.float().mean().item(),
           "cluster_accuracy_top1": (head.labels[full.argmax(-1)] == pred).float().mean().item(),
           "top1_agreement": (restricted.argmax(-1) == full.argmax(-1)).float().mean().item(),
           "loss_full": full_nll.mean().item(),
           "cluster_sizes": torch.bincount(head.labels, minlength=head.k).tolist()}
    if bool(inside.any()):
        r_nll = F.cross_entropy(restricted[inside], labels[inside], reduction="none")
        res["loss_full_inside"] = full_nll[inside].mean().item()
        res["loss_restricted_inside"] = r_nll.mean().item()
        res["loss_delta_inside"] = res["loss_restricted_inside"] - res["loss_full_inside"]
    rows = torch.bincount(head.labels, minlength=head.k)[pred].float().mean().item()
    res["rows_loaded"] = rows / head.labels.numel()
    return res


__all__ = ["ClusterHead", "ClusterHeadConfig", "build_cluster_head", "evaluate_cluster_head", "fit_scorer",
           "kmeans", "pca_project"]
