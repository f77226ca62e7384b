"""MLE trainer: loss falls, exact resume, checkpoint RNG round trip, `wm pretrain video` CLI."""

import json
import math
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tasks"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from mle_toys import cfg, model_for, video_task  # noqa: E402
from wm_fakes import FakeFrameTokenizer  # noqa: E402

from worldmodels.tasks.video import VideoSpec  # noqa: E402
from worldmodels.train import checkpoint as ckpt  # noqa: E402
from worldmodels.train.logging import read_metrics  # noqa: E402
from worldmodels.train.mle import train_mle  # noqa: E402


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return video_task(tmp_path_factory.mktemp("data"), VideoSpec("multi", 1, 2))


def test_resume_is_exact(task, tmp_path):
    # 6 steps straight (7 train batches/epoch at batch 4 -> the run crosses an epoch boundary)
    full = tmp_path / "full"
    m1 = model_for(task)
    train_mle(m1, task, cfg(6), full)
    half = tmp_path / "half"
    train_mle(model_for(task), task, cfg(6), half, until=3)  # "interrupted" at step 3
    # perturb the global RNGs: a resumed run must restore them, not depend on them
    torch.manual_seed(123), np.random.seed(5), random.seed(7)
    m2 = model_for(task)
    train_mle(m2, task, cfg(6), half, resume=True)
    a = [r["loss"] for r in read_metrics(full) if "loss" in r]
    b = [r["loss"] for r in read_metrics(half) if "loss" in r]
    assert len(a) == len(b) == 6
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    for (n, p), q in zip(m1.named_parameters(), m2.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=0, msg=n)
    evals = [r["eval_loss"] for r in read_metrics(full) if "eval_loss" in r]
    assert len(evals) == 2 and all(np.isfinite(evals))
    assert sorted(p.name for p in (full / "checkpoints").glob("step_*")) == ["step_00000003",
                                                                              "step_00000006"]


def test_loss_falls_below_unigram(task, tmp_path):
    ds = task.dataset("train", with_frames=False, progress=False)
    lm = task.lm_batch(task.collate([ds[i] for i in range(len(ds))]))
    lab = lm["labels"][lm["labels"] != -100]
    p = torch.bincount(lab, minlength=task.vocab_size).float()
    p = p[p > 0] / p.sum()
    unigram = float(-(p * p.log()).sum())
    train_mle(model_for(task), task, cfg(200, eval_every=200, save_every=200, log_every=10,
                                             grad_accum=1), tmp_path)
    last = [r["loss"] for r in read_metrics(tmp_path) if "loss" in r][-1]
    assert last < 0.8 * unigram, (last, unigram)


def test_checkpoint_restores_all_rngs(tmp_path):
    m = torch.nn.Linear(3, 2)
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    ckpt.save_checkpoint(tmp_path, 5, {"m": m}, state={"x": 1})
    want = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    m2 = torch.nn.Linear(3, 2)
    st = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path), {"m": m2})
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert st["step"] == 5 and st["x"] == 1
    assert torch.equal(want[0], got[0]) and np.array_equal(want[1], got[1]) and want[2] == got[2]
    assert torch.equal(m.weight, m2.weight)
    assert not list(tmp_path.glob("checkpoints/.tmp-*"))


def test_cli_pretrain_video_writes_a_world_model(task, tmp_path):
    from typer.testing import CliRunner

    from worldmodels.commands.pretrain import app
    from worldmodels.world_model import VideoWorldModel

    tok_dir = tmp_path / "tok"
    FakeFrameTokenizer().save_pretrained(tok_dir)
    out = tmp_path / "wm"
    args = ["video", "--data", task.data_root, "--tokenizer", str(tok_dir), "--out", str(out),
            "--preset", "test", "--steps", "4", "--set", "train.batch_size=4",
            "--set", "train.save_every=2", "--set", "data.layout.future_frames=2",
            "--set", "train.device=cpu", "--set", f"data.cache_dir={tmp_path / 'c'}"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    meta = json.loads((out / "worldmodel.json").read_text())
    assert meta["layout"]["spec"]["future_frames"] == 2 and (out / "config.yaml").is_file()
    wm = VideoWorldModel.from_pretrained(out, device="cpu")
    frames = torch.rand(2, 1, 3, 16, 16)
    pred = wm.predict(frames, torch.zeros(2, 3, 2), n_samples=3)
    assert pred.shape == (2, 3, 3, 3, 16, 16) and pred.min() >= 0 and pred.max() <= 1
    r = CliRunner().invoke(app, args[:-6] + ["--steps", "6", "--resume", "--set",
                                             "train.batch_size=4", "--set",
                                             "data.layout.future_frames=2", "--set",
                                             "train.device=cpu"])
    assert r.exit_code == 0, r.output
    assert ckpt.latest_checkpoint(out).name == "step_00000006"
    bad = CliRunner().invoke(app, args + ["--set", "train.stepz=3"])
    assert bad.exit_code != 0 and "stepz" in bad.output


def test_cli_pretrain_video_with_the_rwkv7_backbone(task, tmp_path):
    """The video modality on RWKV-7 (`--set model.family=rwkv7`): trains (loss falls), saves a
    world model that loads as RWKV-7 and predicts frames through the recurrent-state rollout."""
    from typer.testing import CliRunner

    from worldmodels.commands.pretrain import app
    from worldmodels.world_model import VideoWorldModel

    tok_dir = tmp_path / "tok"
    FakeFrameTokenizer().save_pretrained(tok_dir)
    out = tmp_path / "wm"
    r = CliRunner().invoke(app, ["video", "--data", task.data_root, "--tokenizer", str(tok_dir),
                                 "--out", str(out), "--preset", "test", "--steps", "12",
                                 "--set", "model.family=rwkv7", "--set", "train.batch_size=4",
                                 "--set", "train.optim.lr=3e-3", "--set", "train.log_every=1",
                                 "--set", "train.device=cpu", "--set", f"data.cache_dir={tmp_path / 'c'}"])
    assert r.exit_code == 0, r.output
    losses = [row["loss"] for row in read_metrics(out) if "loss" in row]
    assert len(losses) == 12 and sum(losses[-3:]) < sum(losses[:3]), losses
    wm = VideoWorldModel.from_pretrained(out, device="cpu")
    assert type(wm.model).__name__ == "RWKV7ForCausalLM"
    pred = wm.predict(torch.rand(2, 1, 3, 16, 16), torch.zeros(2, 2, 2), n_samples=2)  # 2 future frames
    assert pred.shape == (2, 2, 2, 3, 16, 16) and pred.min() >= 0 and pred.max() <= 1


def test_cli_pretrain_video_init_continues_from_a_world_model(task, tmp_path):
    """--init starts from another world model's backbone (same weights at step 0, its layout),
    and refuses a different tokenizer with the flag to use instead."""
    from typer.testing import CliRunner

    from worldmodels.commands.pretrain import app
    from worldmodels.world_model import VideoWorldModel

    tok_dir = tmp_path / "tok"
    FakeFrameTokenizer().save_pretrained(tok_dir)
    common = ["--data", task.data_root, "--tokenizer", str(tok_dir), "--set", "train.batch_size=4",
              "--set", "train.device=cpu", "--set", f"data.cache_dir={tmp_path / 'c'}"]
    first = ["video", *common, "--out", str(tmp_path / "a"), "--preset", "test", "--steps", "3",
             "--set", "data.layout.future_frames=2"]
    assert CliRunner().invoke(app, first).exit_code == 0
    # one Adam step at lr 1e-9 moves each weight by ~1e-9: the continued model is the init's
    r = CliRunner().invoke(app, ["video", *common, "--init", str(tmp_path / "a"), "--out", str(tmp_path / "b"),
                                 "--steps", "1", "--set", "train.optim.lr=1e-9"])
    assert r.exit_code == 0, r.output
    a = VideoWorldModel.from_pretrained(tmp_path / "a", device="cpu")
    b = VideoWorldModel.from_pretrained(tmp_path / "b", device="cpu")
    assert b.task.spec.future_frames == 2  # the init's layout, not the default
    saved = yaml.safe_load((tmp_path / "b" / "config.yaml").read_text())
    assert saved["task"]["layout"]["future_frames"] == 2  # and its config.yaml says so (task: section)
    for (name, pa), pb in zip(a.model.state_dict().items(), b.model.state_dict().values(), strict=True):
        assert torch.allclose(pa, pb, atol=1e-6) and pa.abs().max() > 1e-3, name
    assert json.loads((tmp_path / "b" / "worldmodel.json").read_text())["init"] == str(tmp_path / "a")
    # --init with --resume: the checkpoint wins, and the run says so
    r = CliRunner().invoke(app, ["video", *common, "--init", str(tmp_path / "a"), "--out", str(tmp_path / "b"),
                                 "--steps", "2", "--resume"])
    assert r.exit_code == 0, r.output
    assert "replaced by the checkpoint" in r.output
    other = tmp_path / "tok2"
    FakeFrameTokenizer(grid=2).save_pretrained(other)
    r = CliRunner().invoke(app, ["video", *common[:2], "--tokenizer", str(other), *common[4:],
                                 "--init", str(tmp_path / "a"), "--out", str(tmp_path / "c"), "--steps", "1"])
    assert r.exit_code == 2 and "another tokenizer" in r.output and "--tokenizer" in r.output


def test_cli_pretrain_video_init_new_tokenizer_needs_the_same_token_layout(task, tmp_path):
    """init_new_tokenizer=true continues a backbone on a retrained tokenizer of the same token
    layout (and records it as the model's tokenizer); a tokenizer with another layout is
    refused naming the field that differs."""
    from typer.testing import CliRunner

    from worldmodels.commands.pretrain import app

    tok_dir = tmp_path / "tok"
    FakeFrameTokenizer().save_pretrained(tok_dir)
    common = ["--data", task.data_root, "--set", "train.batch_size=4", "--set", "train.device=cpu",
              "--set", f"data.cache_dir={tmp_path / 'c'}"]
    r = CliRunner().invoke(app, ["video", *common, "--tokenizer", str(tok_dir), "--out", str(tmp_path / "a"),
                                 "--preset", "test", "--steps", "2", "--set", "data.layout.future_frames=2"])
    assert r.exit_code == 0, r.output
    retrained = tmp_path / "tok_retrained"  # same layout, different file: "another tokenizer"
    FakeFrameTokenizer().save_pretrained(retrained)
    cfg = json.loads((retrained / "config.json").read_text())
    (retrained / "config.json").write_text(json.dumps({**cfg, "note": "fine-tuned"}))
    cont = ["video", *common, "--tokenizer", str(retrained), "--init", str(tmp_path / "a"), "--steps", "1"]
    r = CliRunner().invoke(app, [*cont, "--out", str(tmp_path / "b")])
    assert r.exit_code == 2 and "init_new_tokenizer=true" in r.output
    r = CliRunner().invoke(app, [*cont, "--out", str(tmp_path / "b"), "--set", "init_new_tokenizer=true"])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "b" / "worldmodel.json").read_text())["tokenizer_source"] == str(retrained)
    other = tmp_path / "tok2"
    FakeFrameTokenizer(grid=2).save_pretrained(other)
    r = CliRunner().invoke(app, ["video", *common, "--tokenizer", str(other), "--init", str(tmp_path / "a"),
                                 "--steps", "1", "--out", str(tmp_path / "c"), "--set", "init_new_tokenizer=true"])
    assert r.exit_code == 2 and "frame_tokens 16 (init) vs 4" in r.output, r.output


class _TableLM(torch.nn.Module):
    """logits[b, i] = table[input_ids[b, i]] (+ inf/NaN at positions in ``poison``, added so the
    gradient flows back through them to the table as it would through a real network)."""

    def __init__(self, vocab, poison=None):
        super().__init__()
        self.table = torch.nn.Parameter(torch.randn(vocab, vocab, generator=torch.Generator().manual_seed(0)))
        self.poison = poison

    def forward(self, input_ids, attention_mask=None):
        from types import SimpleNamespace

        logits = self.table[input_ids]  # (B, L, V)
        if self.poison is not None:
            bad = torch.zeros_like(logits).masked_fill(self.poison[..., None], float("inf"))
            bad[..., 0] = bad[..., 0].masked_fill(self.poison, float("nan"))
            logits = logits + bad
        return SimpleNamespace(logits=logits)


def test_non_finite_logits_at_ignored_positions_change_nothing():
    """inf/NaN logits where the label is ignored (e.g. padding): same loss and gradient as
    finite ones there, and a finite gradient; the loss matches a hand-computed log-softmax."""
    from worldmodels.train.mle import token_loss_sum

    ids = torch.tensor([[1, 2, 3, 0, 0], [4, 1, 2, 3, 4]])
    labels = torch.tensor([[-100, -100, 3, -100, -100], [-100, 1, 2, 3, -100]])  # next token at i+1
    poison = torch.zeros(2, 5, dtype=torch.bool)
    poison[0, 2:] = True  # predicts labels[0, 3:], all ignored
    poison[1, 3:] = True  # predicts labels[1, 4] (ignored) and nothing (last position)
    out = []
    for p in (None, poison):
        model = _TableLM(5, p)
        loss, n = token_loss_sum(model, {"input_ids": ids, "labels": labels})
        loss.backward()
        out.append((loss.item(), n, model.table.grad.clone(), model.table.detach()))
    (l0, n0, g0, table), (l1, n1, g1, _) = out
    # hand: sum over labelled targets of -log softmax(table[previous id])[target]
    lsm = torch.log_softmax(table.double(), -1)
    want = -(lsm[2, 3] + lsm[4, 1] + lsm[1, 2] + lsm[2, 3]).item()
    assert n0 == n1 == 4 and l0 == pytest.approx(want, rel=1e-6)
    assert math.isfinite(l1) and l1 == l0
    assert torch.isfinite(g1).all() and torch.equal(g1, g0)


def test_left_padded_batch_loss_equals_rows_alone():
    """A left-padded text-like batch: token_loss_sum (loss and gradient) equals the sum over
    its rows run alone, unpadded (position ids follow the attention mask, as in the rollout).
    GPT-2's learned absolute positions make a shifted row differ (RoPE alone would not see a
    uniform shift)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from worldmodels.train.mle import token_loss_sum

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=64, n_embd=32, n_layer=2, n_head=4,
                                       resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))
    g = torch.Generator().manual_seed(1)
    rows = [torch.randint(1, 50, (n,), generator=g) for n in (3, 9, 6)]
    L = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), L, dtype=torch.long)
    mask = torch.zeros(len(rows), L, dtype=torch.long)
    labels = torch.full((len(rows), L), -100)
    alone = []
    for i, r in enumerate(rows):
        lab = r.clone()
        lab[: len(r) // 2] = -100  # loss on the second half ("answer") only
        ids[i, L - len(r):], mask[i, L - len(r):], labels[i, L - len(r):] = r, 1, lab
        alone.append({"input_ids": r[None], "labels": lab[None]})
    loss, n = token_loss_sum(model, {"input_ids": ids, "labels": labels, "attention_mask": mask})
    loss.backward()
    grad = model.lm_head.weight.grad.clone()
    model.zero_grad()
    parts = [token_loss_sum(model, lm) for lm in alone]
    sum(p[0] for p in parts).backward()
    assert n == sum(p[1] for p in parts) == 2 + 5 + 3
    torch.testing.assert_close(loss, sum(p[0] for p in parts).detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grad, model.lm_head.weight.grad, atol=1e-6, rtol=1e-4)
