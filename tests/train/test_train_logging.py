"""RunLogger: JSONL rows append across runs, non-finite values become null, off-rank is silent."""

import math

import torch

from worldmodels.train.logging import RunLogger, read_metrics
from worldmodels.train.sampler import ResumableBatchSampler


def test_jsonl_rows_append_and_nan_is_null(tmp_path):
    log = RunLogger(tmp_path, tensorboard=False)
    log.log(1, {"loss": torch.tensor(2.5), "note": "x", "bad": math.nan})
    log.close()
    RunLogger(tmp_path, tensorboard=False).log(2, {"loss": 1.0})
    rows = read_metrics(tmp_path)
    assert [r["step"] for r in rows] == [1, 2]
    assert rows[0]["loss"] == 2.5 and rows[0]["bad"] is None and rows[0]["note"] == "x"
    RunLogger(tmp_path / "other", enabled=False).log(1, {"loss": 1.0})
    assert not (tmp_path / "other").exists()


def test_sampler_ranks_partition_global_batches_and_resume():
    one = ResumableBatchSampler(10, 4, seed=1)
    r0 = ResumableBatchSampler(10, 2, seed=1, rank=0, world_size=2)
    r1 = ResumableBatchSampler(10, 2, seed=1, rank=1, world_size=2)
    for a, b, c in zip(one, r0, r1, strict=True):
        assert a == b + c
    s = ResumableBatchSampler(10, 4, seed=1)
    s.consumed(3)  # 2 batches/epoch -> epoch 1, position 1
    assert (s.epoch, s.position) == (1, 1)
    t = ResumableBatchSampler(10, 4, seed=1)
    t.load_state_dict(s.state_dict())
    assert list(t) == list(s) and len(list(t)) == 1
