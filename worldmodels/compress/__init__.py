"""RWKV-Lite compression of world models (``wm compress``; seeds.md §7, issue 23 step 3).

- ``lowrank.py``: SVD low-rank factorisation of the large projections (RWKV-7 r/k/v/o and FFN
  key/value; Llama q/k/v/o/gate/up/down), variants plain / relu_diag / sqrelu_diag, recorded in
  the backbone's config so ``load_backbone`` rebuilds it.
- ``sparsity.py``: the FFN activation-sparsity predictor (MLP OR low-bit) for RWKV-7.
- ``cluster_head.py``: the clustered output head (k-means on PCA projections of the head rows).
- ``measure.py`` / ``run.py`` / ``report.py``: the ``wm compress`` pipeline and its report.

Submodules import torch; this package file does not (``wm --help`` stays instant).
"""
