"""SIMPLER's policy-ranking metrics: Pearson correlation and MMRV.

``r`` are success rates measured in reality (here: MuJoCo), ``s`` in the simulator (here: the
learned world model), one entry per policy::

    pearson([0.1, 0.5, 0.9], [0.2, 0.4, 0.8])   # ~0.98
    mmrv([0.1, 0.5, 0.9], [0.9, 0.5, 0.1])      # 0.8*1/3 + 0.4*... (inverted ranking)
"""

from __future__ import annotations

import numpy as np


def _pair(real, sim) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(real, dtype=np.float64).reshape(-1)
    s = np.asarray(sim, dtype=np.float64).reshape(-1)
    if r.shape != s.shape:
        raise ValueError(f"real and sim success rates must have the same length, got {r.size} and {s.size}")
    if r.size < 2:
        raise ValueError(f"ranking metrics need at least 2 policies, got {r.size}")
    return r, s


def pearson(real, sim) -> float:
    """``Σ s̃ r̃ / (sqrt(Σ s̃² · Σ r̃²) + 1e-8)`` with centred values (0 if either is constant)."""
    r, s = _pair(real, sim)
    rc, sc = r - r.mean(), s - s.mean()
    return float((sc * rc).sum() / (np.sqrt((sc**2).sum() * (rc**2).sum()) + 1e-8))


def mmrv(real, sim) -> float:
    """Mean maximum rank violation ``(1/N) Σ_i max_j [(s_i>s_j) ≠ (r_i>r_j)] · |r_i − r_j|``."""
    r, s = _pair(real, sim)
    violated = (s[:, None] > s[None, :]) != (r[:, None] > r[None, :])   # (N, N)
    return float((violated * np.abs(r[:, None] - r[None, :])).max(axis=1).mean())


def ranking_metrics(real, sim) -> dict:
    """Both metrics (and N) as a dict for reports."""
    return {"pearson": pearson(real, sim), "mmrv": mmrv(real, sim), "n": int(np.size(real))}
