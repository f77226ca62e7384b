"""``train.input_noise``: which tokens the video task noises, labels kept clean, the rate,
determinism per (seed, step), exact resume, and a clear refusal by tasks without noisable tokens."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mle_toys import cfg, model_for, video_task  # noqa: E402

from worldmodels.tasks.base import Task  # noqa: E402
from worldmodels.tasks.video import VideoSpec  # noqa: E402
from worldmodels.train.logging import read_metrics  # noqa: E402
from worldmodels.train.mle import MLEConfig, input_noise, train_mle  # noqa: E402


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return video_task(tmp_path_factory.mktemp("data"), VideoSpec("single", 2, 1))


def lm_of(task, n=6):
    ds = task.dataset("train", with_frames=False, progress=False)
    return task.lm_batch(task.collate([ds[i] for i in range(n)]))


def test_only_visual_inputs_change_at_about_the_rate_and_labels_stay(task):
    lm = lm_of(task)
    out = task.noise_inputs(lm, 0.3, torch.Generator().manual_seed(0))
    ids, new = lm["input_ids"], out["input_ids"]
    vis = ids < task.visual_vocab
    assert torch.equal(out["labels"], lm["labels"])  # the targets stay clean
    assert torch.equal(new[~vis], ids[~vis])  # actions, BOS, EOS untouched
    assert int((new[vis] >= task.visual_vocab).sum()) == 0  # replacements are visual ids
    changed = float((new != ids)[vis].float().mean())
    # a replaced token keeps its id with probability 1/visual_vocab
    expect = 0.3 * (1 - 1 / task.visual_vocab)
    assert abs(changed - expect) < 0.05, (changed, expect)
    assert torch.equal(lm["input_ids"], ids)  # the input batch is not modified in place


def test_same_seed_and_step_same_noise_other_step_other_noise(task):
    lm = lm_of(task)
    run = MLEConfig(input_noise=0.2, seed=3)
    a = input_noise(task, run, 5)(lm)["input_ids"]
    b = input_noise(task, run, 5)(lm)["input_ids"]
    c = input_noise(task, run, 6)(lm)["input_ids"]
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert input_noise(task, MLEConfig(), 5) is None  # off by default


def noisy(steps, **kw):
    """One micro-batch per step, no held-out evaluation, input noise 0.25."""
    return cfg(steps, **{"grad_accum": 1, "eval_every": 0, "eval_batches": 1, "input_noise": 0.25, **kw})


def test_noisy_training_resumes_exactly_and_differs_from_clean(task, tmp_path):
    train_mle(model_for(task), task, noisy(6), tmp_path / "full")
    train_mle(model_for(task), task, noisy(6), tmp_path / "half", until=3)
    torch.manual_seed(99)  # a resumed run must not depend on the global RNG
    train_mle(model_for(task), task, noisy(6), tmp_path / "half", resume=True)
    train_mle(model_for(task), task, noisy(6, input_noise=0.0), tmp_path / "clean")
    loss = {k: [r["loss"] for r in read_metrics(tmp_path / k) if "loss" in r]
            for k in ("full", "half", "clean")}
    assert len(loss["full"]) == len(loss["half"]) == 6
    np.testing.assert_allclose(loss["full"], loss["half"], rtol=0, atol=1e-6)
    assert not np.allclose(loss["full"], loss["clean"])  # the noise reaches the model


def test_bad_rate_and_unsupported_task_are_refused():
    with pytest.raises(ValueError, match=r"train.input_noise must be in \[0, 1\)"):
        MLEConfig(input_noise=1.0)

    class NoNoise(Task):
        pass

    with pytest.raises(ValueError, match="train.input_noise is not supported by the NoNoise task"):
        object.__new__(NoNoise).noise_inputs({}, 0.1, torch.Generator())


@pytest.mark.parametrize("name", ["pretrain_metaworld", "pretrain_metaworld_single", "pretrain_metaworld_skip10", "pretrain_small",
                                  "pretrain_tiny", "pretrain_tiny_skip6"])
def test_video_pretrain_recipes_load(name):
    from worldmodels.commands.pretrain import PretrainVideoConfig
    from worldmodels.config import load_config

    path = Path(__file__).resolve().parents[2] / "data" / "recipes" / f"{name}.yaml"
    cfg = load_config(PretrainVideoConfig, path, ["train.steps=7"])
    assert cfg.train.steps == 7
    if name == "pretrain_metaworld_single":
        assert cfg.task.layout.mode == "single" and cfg.train.input_noise == 0.2
    if name == "pretrain_metaworld_skip10":  # the cross-validated recipe of docs/world_model.md
        assert cfg.task.layout.frame_skip == 10 and cfg.train.input_noise == 0.4 and cfg.train.steps == 7
