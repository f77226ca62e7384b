"""A time budget (``max_minutes``) fits the learning-rate schedule instead of cutting it: with a
fake clock (one second per optimizer step) and a 1-minute budget, the MLE and tokenizer cosines
end at ``min_lr_ratio`` exactly at step 60; the compat switch ``fit_schedule=false`` reproduces
the old cut (the run stops near peak lr)."""

import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tasks"))
from wm_fakes import FakeFrameTokenizer, make_episodes  # noqa: E402

from worldmodels.models import build_backbone  # noqa: E402
from worldmodels.tasks.video import VideoSpec, VideoTask  # noqa: E402
from worldmodels.tasks.video_data import ActionCodec  # noqa: E402
from worldmodels.train.logging import read_metrics  # noqa: E402
from worldmodels.train.mle import BudgetFit, MLEConfig, OptimConfig, train_mle  # noqa: E402


class FakeClock:
    """Returns 0, 1, 2, ... seconds: the trainers read it once at the start and once per step."""

    def __init__(self):
        self.t = -1.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


def test_budget_fit_by_hand():
    fit = BudgetFit(budget_s=600, max_steps=1000, start_time=0.0, warmup=2, every=10)
    assert fit.update(1, 1.0) is None  # the first step is the mark (compilation, caches)
    assert [fit.update(s, float(s)) for s in range(2, 6)] == [None] * 4  # 4 steps measured < 5
    assert fit.update(6, 6.0) == 600  # 1 step/s, 594 s left -> 6 + 594
    assert fit.update(7, 7.0) is None  # refitted every 10 steps only
    assert fit.update(20, 300.0) == 20 + int(19 / 299 * 300)  # slowed: 19 steps in 299 s
    slow = BudgetFit(budget_s=600, max_steps=1000, start_time=0.0, warmup=100, every=10)
    slow.update(1, 10.0)  # 10 s per step: fitted once 5 % of the budget (30 s) is measured
    assert [slow.update(s, 10.0 * s) for s in (2, 3, 4)] == [None, None, 4 + 56]  # 0.1/s, 560 s left
    capped = BudgetFit(budget_s=1e6, max_steps=100, start_time=0.0, warmup=0, every=1)
    capped.update(1, 1.0)
    assert [capped.update(s, float(s)) for s in range(2, 7)][-1] == 100  # never past train.steps


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    root = make_episodes(tmp_path_factory.mktemp("data"), n=6, T=8)
    return VideoTask(FakeFrameTokenizer(), VideoSpec("multi", 1, 2), ActionCodec([-1, -1], [1, 1]),
                     data_root=str(root), cache_dir=str(root / ".cache"))


def _mle(task, out, until=None, resume=False, **kw):
    torch.manual_seed(0)
    model = build_backbone("test", task.vocab_size, 256)
    cfg = MLEConfig(steps=1000, batch_size=4, eval_every=0, eval_batches=1, save_every=0,
                    log_every=1, seed=0, device="cpu", max_minutes=1.0, tensorboard=False,
                    optim=OptimConfig(lr=1e-3, warmup_steps=2, schedule="cosine", min_lr_ratio=0.1),
                    **kw)
    train_mle(model, task, cfg, out, clock=FakeClock(), until=until, resume=resume)
    return [r for r in read_metrics(out) if "lr" in r]


def test_mle_cosine_ends_at_the_budget(task, tmp_path, capsys):
    logs = _mle(task, tmp_path / "fit")
    assert logs[-1]["step"] == 60  # 60 one-second steps fit in one minute
    # the lr logged after step n is the factor at n: the cosine over 60 steps reaches the floor
    assert logs[-1]["lr"] == pytest.approx(1e-4, rel=1e-9)
    mid = next(r for r in logs if r["step"] == 31)  # halfway through the 58 cosine steps
    assert mid["lr"] == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 29 / 58))))
    assert "schedule fitted to max_minutes=1.0: 60 steps (train.steps=1000)" in capsys.readouterr().out


def test_mle_resume_finishes_the_fitted_schedule(task, tmp_path):
    full = _mle(task, tmp_path / "full")
    _mle(task, tmp_path / "half", until=30)  # interrupted at step 30 of the fitted 60
    resumed = _mle(task, tmp_path / "half", resume=True)  # a fresh clock: not refitted
    assert [r["step"] for r in resumed] == list(range(1, 61))
    for a, b in zip(full, resumed, strict=True):
        assert a["lr"] == pytest.approx(b["lr"], rel=1e-12)
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-6)


def test_mle_compat_switch_cuts_the_schedule(task, tmp_path):
    logs = _mle(task, tmp_path / "cut", fit_schedule=False)
    assert logs[-1]["step"] == 61  # stopped by the clock (61 s > 60 s)...
    assert logs[-1]["lr"] > 0.99 * 1e-3  # ...near peak lr: the schedule spans 1000 steps


def test_tokenizer_cosine_ends_at_the_budget(tmp_path):
    from tokenizers_video import FrameTokenizer, FrameTokenizerConfig, TrainConfig, train

    torch.manual_seed(0)
    tok = FrameTokenizer(FrameTokenizerConfig(image_size=16, block_out_channels=(8, 8),
                                              norm_num_groups=4, fsq_levels=(5, 5)))
    frames = torch.rand(8, 3, 16, 16)
    cfg = TrainConfig(steps=1000, batch_size=4, lr=1e-3, warmup_steps=2, min_lr_ratio=0.1,
                      max_minutes=0.5, save_every=1000, image_every=0, device="cpu",
                      progress=False, log_every=1)
    lines = []
    out = train(tok, frames, cfg, tmp_path / "tok", clock=FakeClock(), log=lines.append)
    assert out["step"] == 30 and out["history"][-1]["lr"] == pytest.approx(1e-4, rel=1e-9)
    assert any("schedule fitted to max_minutes=0.5: 30 steps" in ln for ln in lines)
    assert (tmp_path / "tok" / "checkpoint").is_dir()  # a checkpoint at the fitted end
