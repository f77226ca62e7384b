"""Recovery by distillation (``worldmodels/compress/distill.py``): the loss by hand, it lowers
the student's KL to the uncompressed teacher, and ``wm compress --distill`` end to end.

    OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/compress/test_distill.py
"""

import copy
import json
import math

import pytest
import torch
from compress_toys import random_rwkv7, toy_text, world_model_dir
from typer.testing import CliRunner

from worldmodels.cli import app
from worldmodels.compress.distill import _positions, distill, distill_loss
from worldmodels.compress.lowrank import factorise
from worldmodels.compress.run import _recover_default


def test_distill_loss_by_hand():
    t = torch.tensor([[[0.0, math.log(3.0)], [1.0, 2.0]]])  # position 0: p = (1/4, 3/4)
    s = torch.zeros(1, 2, 2)                                  # q = (1/2, 1/2)
    kl0 = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    mask = torch.tensor([[True, False]])
    assert float(distill_loss(s, t, mask)) == pytest.approx(kl0, rel=1e-6)
    assert float(distill_loss(t, t, None)) == pytest.approx(0.0, abs=1e-7)
    p = torch.softmax(t[0, 0] / 2, -1)  # temperature 2: KL of the softened pair, times 4
    assert float(distill_loss(s, t, mask, 2.0)) == pytest.approx(4 * float((p * (p / 0.5).log()).sum()), rel=1e-6)
    am = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 0]])
    assert _positions(am, am.shape).tolist() == [[False, True, True, False], [True, True, False, False]]


def test_distillation_lowers_the_kl_to_the_teacher():
    teacher = random_rwkv7()
    student = copy.deepcopy(teacher)
    factorise(student, 8)
    task = toy_text.ToyTextTask(toy_text.build_tokenizer(), n_train=64, n_test=8)
    lm = task.lm_batch(task.collate(task.lm_dataset("train")[:16]))
    mask = _positions(lm["attention_mask"], lm["input_ids"].shape)

    def kl():
        with torch.no_grad():
            kw = {"input_ids": lm["input_ids"], "attention_mask": lm["attention_mask"]}
            return float(distill_loss(student(**kw).logits, teacher(**kw).logits, mask))

    before = kl()
    rec = _recover_default()
    rec.optim.lr, rec.optim.warmup_steps, rec.batch_size = 3e-3, 0, 16
    losses = distill(student, teacher, task, 30, rec)
    assert len(losses) == 30 and kl() < 0.5 * before, (before, kl())


def test_wm_compress_distill(tmp_path):
    world_model_dir(tmp_path / "wm", random_rwkv7())
    out = tmp_path / "d"
    fast = ["--set", "eval_batches=1", "--set", "eval_batch_size=8", "--set", "recover.batch_size=8"]
    res = CliRunner().invoke(app, ["compress", "--model", str(tmp_path / "wm"), "--out", str(out),
                                   "--svdfac", "4", "--recover-steps", "3", "--distill", *fast])
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "compress.json").read_text())
    assert rep["recovered"]["method"] == "distill" and rep["recovered"]["steps"] == 3
    assert rep["recovered"]["loss"] != rep["after"]["loss"]
    assert json.loads((out / "worldmodel.json").read_text())["recover_method"] == "distill"
    bad = CliRunner().invoke(app, ["compress", "--model", str(tmp_path / "wm"), "--out",
                                   str(tmp_path / "e"), "--distill"])
    assert bad.exit_code == 2 and bad.output.strip().startswith("error:") and "--recover-steps" in bad.output
