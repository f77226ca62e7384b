"""train_mle with truncated BPTT: with train.tbptt_step=window every window with loss tokens
is one optimizer step (counted by replaying the sampler), the LR schedule runs over those
steps, an interruption waits for the sequence's end and resuming equals the straight run;
tbptt_step=window refuses several ranks.

    OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/train/test_tbptt_train.py
"""

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tbptt_toys import SeqTask, rwkv  # noqa: E402

from worldmodels.tasks.base import IGNORE_INDEX  # noqa: E402
from worldmodels.train import checkpoint as ckpt  # noqa: E402
from worldmodels.train.distributed import DistInfo  # noqa: E402
from worldmodels.train.logging import read_metrics  # noqa: E402
from worldmodels.train.mle import MLEConfig, OptimConfig, train_mle  # noqa: E402
from worldmodels.train.sampler import ResumableBatchSampler  # noqa: E402
from worldmodels.train.tbptt import windows  # noqa: E402

W, LR, WARM = 8, 3e-3, 3


@pytest.fixture(scope="module")
def task():
    return SeqTask(n=12, lengths=(17, 23, 30, 9))


def cfg(steps, **kw):
    base = dict(steps=steps, batch_size=2, grad_accum=1, eval_every=0, eval_batches=1,
                save_every=0, log_every=1, seed=0, device="cpu", tensorboard=False,
                tbptt_window=W, optim=OptimConfig(lr=LR, warmup_steps=WARM, schedule="cosine"))
    base.update(kw)
    return MLEConfig(**base)


def sequence_ends(task, n_batches=40):
    """Cumulative optimizer steps at the end of each batch, replaying the sampler: a batch
    makes one step per window with loss tokens."""
    sampler, ends, total = ResumableBatchSampler(len(task.items), 2, seed=0), [], 0
    while len(ends) < n_batches:
        for idx in sampler:
            lab = task.collate([task.items[i] for i in idx])["labels"]
            total += sum(int((lab[:, lo:hi] != IGNORE_INDEX).any())
                         for _, _, lo, hi in windows(lab.shape[1], W))
            ends.append(total)
            sampler.consumed(1)
    return ends


def factor(step, total):
    if step < WARM:
        return (step + 1) / WARM
    t = (step - WARM) / max(1, total - WARM)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


def test_window_steps_count_and_schedule(task, tmp_path):
    ends = sequence_ends(task)
    steps = ends[3] + 1  # stops one window into the fifth batch
    res = train_mle(rwkv(), task, cfg(steps), tmp_path)
    rows = [r for r in read_metrics(tmp_path) if "loss" in r]
    assert res["step"] == steps and [r["step"] for r in rows] == list(range(1, steps + 1))
    np.testing.assert_allclose([r["lr"] for r in rows], [LR * factor(i, steps) for i in range(1, steps + 1)],
                               rtol=1e-6)
    assert all(np.isfinite(r["loss"]) for r in rows)
    state = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path), {"model": rwkv()})
    assert state["sampler"]["position"] == 5  # five batches taken, the last one cut by train.steps
    # tokens are counted per finished batch
    toks = sum(task.tokens_in(task.collate([task.items[i] for i in idx]))
               for idx, _ in zip(ResumableBatchSampler(12, 2, seed=0), range(4), strict=False))
    assert rows[ends[3] - 1]["tokens"] == toks


def test_interrupt_waits_for_the_sequence_end_and_resume_is_exact(task, tmp_path):
    ends = sequence_ends(task)
    steps, until = ends[5] + 2, ends[1] + 1  # interrupted inside the third batch
    m1 = rwkv()
    train_mle(m1, task, cfg(steps), tmp_path / "full")
    half = tmp_path / "half"
    train_mle(rwkv(), task, cfg(steps), half, until=until)
    assert ckpt.latest_checkpoint(half).name == f"step_{ends[2]:08d}"  # the third batch's end
    torch.manual_seed(99)
    m2 = rwkv()
    train_mle(m2, task, cfg(steps), half, resume=True)
    a = [r["loss"] for r in read_metrics(tmp_path / "full") if "loss" in r]
    b = [r["loss"] for r in read_metrics(half) if "loss" in r]
    assert len(a) == len(b) == steps
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    for (n, p), q in zip(m1.named_parameters(), m2.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=0, msg=n)


def test_sequence_mode_one_step_per_batch(task, tmp_path):
    res = train_mle(rwkv(), task, cfg(4, tbptt_step="sequence", tbptt_window=5), tmp_path)
    rows = [r for r in read_metrics(tmp_path) if "loss" in r]
    assert res["step"] == 4 and len(rows) == 4
    state = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path), {"model": rwkv()})
    assert state["sampler"]["position"] == 4


def test_window_steps_refuse_several_ranks(task, tmp_path):
    with pytest.raises(ValueError, match="tbptt_step=window.*tbptt_step=sequence"):
        train_mle(rwkv(), task, cfg(2), tmp_path, info=DistInfo(world_size=2))


def test_run_pretrain_with_windows_rwkv7_trains_and_llama_is_refused(tmp_path):
    """The pipeline wiring: --set train.tbptt_window on the toy text task."""
    import dataclasses

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "text"))
    import toy_text

    from worldmodels.models import BackboneConfig
    from worldmodels.pipelines import run_pretrain

    base = toy_text.pretrain_config(tmp_path / "r", steps=6)
    cfg_r = dataclasses.replace(base, model=BackboneConfig(family="rwkv7", preset="test"),
                                train=dataclasses.replace(base.train, tbptt_window=8, log_every=1))
    assert run_pretrain(cfg_r)["step"] == 6
    rows = [r for r in read_metrics(tmp_path / "r") if "loss" in r]
    assert len(rows) == 6 and all(np.isfinite(r["loss"]) for r in rows)
    cfg_l = dataclasses.replace(toy_text.pretrain_config(tmp_path / "l", steps=2),
                                train=dataclasses.replace(base.train, tbptt_window=8))
    with pytest.raises(ValueError, match=r"train\.tbptt_window"):
        run_pretrain(cfg_l)
