"""`wm compress` end to end (CliRunner) on tiny random RWKV-7 and Llama toy-text world models:
a loadable compressed world model, recovery through run_pretrain, compress.json's fields and
numbers consistent with the loaded model; bad flags exit 2 with one line.

    OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/compress/test_compress_cli.py
"""

import json

import pytest
import torch
from compress_toys import random_llama, random_rwkv7, world_model_dir
from typer.testing import CliRunner

from worldmodels.cli import app
from worldmodels.compress.lowrank import lowrank_modules
from worldmodels.compress.measure import heldout_loss, lm_batches, model_size
from worldmodels.world_model import WorldModel

FAST = ["--set", "eval_batches=1", "--set", "eval_batch_size=8", "--set", "recover.batch_size=8",
        "--set", "sparsity.epochs=1", "--set", "sparsity.max_tokens=256", "--set", "cluster.epochs=1",
        "--set", "cluster.max_tokens=256"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("compress")
    world_model_dir(d / "rwkv", random_rwkv7())
    world_model_dir(d / "llama", random_llama())
    return d


def _run(*args):
    return CliRunner().invoke(app, ["compress", *map(str, args)])


def test_rwkv7_end_to_end_with_recovery_sparsity_and_cluster_head(models, tmp_path):
    out = tmp_path / "svd2"
    res = _run("--model", models / "rwkv", "--out", out, "--svdfac", "2", "--recover-steps", "2",
               "--sparsity", "--cluster-head", "3", *FAST)
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "compress.json").read_text())
    for key in ("before", "after", "recovered", "factor_params", "factor_bytes", "sparsity", "cluster_head"):
        assert key in rep, key
    assert rep["svdfac"] == 2 and rep["variant"] == "plain" and rep["modules"] == 12
    assert rep["recovered"]["steps"] == 2 and (out / "metrics.jsonl").is_file()
    wm = WorldModel.from_pretrained(out, device="cpu")
    assert len(lowrank_modules(wm.model)) == 12
    size = model_size(wm.model)
    assert rep["recovered"]["params"] == rep["after"]["params"] == size["params"]
    assert rep["factor_params"] == pytest.approx(rep["before"]["params"] / size["params"])
    batches = lm_batches(wm.task, "test", 1, 8)
    assert rep["recovered"]["loss"] == pytest.approx(heldout_loss(wm.model, batches), rel=1e-5)
    assert rep["recovered"]["loss"] != rep["after"]["loss"]  # the recovery changed the weights
    o = rep["sparsity"]["overall"]
    assert 0 <= o["sparsity"] <= 1 and 0 <= o["or"]["recall"] <= 1 and "quant" in o
    assert 0 <= rep["cluster_head"]["cluster_accuracy"] <= 1 and rep["cluster_head"]["k"] == 3
    assert "| factorised |" in (out / "compress.md").read_text()
    meta = json.loads((out / "worldmodel.json").read_text())
    assert meta["compression"]["svdfac"] == 2 and meta["recover_steps"] == 2


def test_llama_low_rank_only(models, tmp_path):
    out = tmp_path / "llama4"
    res = _run("--model", models / "llama", "--out", out, "--svdfac", "4", "--variant", "relu_diag",
               "--targets", "q_proj,v_proj", *FAST)
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "compress.json").read_text())
    assert rep["targets"] == ["q_proj", "v_proj"] and "recovered" not in rep
    wm = WorldModel.from_pretrained(out, device="cpu")
    names = set(lowrank_modules(wm.model))
    assert names and all(n.endswith(("q_proj", "v_proj")) for n in names)
    ids = torch.randint(1, 23, (1, 7))
    assert torch.isfinite(wm.model(input_ids=ids).logits).all()
    assert rep["after"]["params"] == model_size(wm.model)["params"] < rep["before"]["params"]


@pytest.mark.parametrize("args,needle", [
    (["--svdfac", "0"], "--svdfac"),
    (["--variant", "cubic"], "--variant"),
    (["--recover-steps", "-1"], "--recover-steps"),
    (["--set", "nope=1"], "nope"),
])
def test_bad_flags_exit_2_with_one_line(models, tmp_path, args, needle):
    res = _run("--model", models / "rwkv", "--out", tmp_path / "x", *args)
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], res.output


def test_bad_inputs_exit_2(models, tmp_path):
    res = _run("--model", tmp_path / "missing", "--out", tmp_path / "o")
    assert res.exit_code == 2 and "--model" in res.output and "worldmodel.json" in res.output
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    res = _run("--model", models / "rwkv", "--out", tmp_path / "full")
    assert res.exit_code == 2 and "--out" in res.output
    res = _run("--model", models / "llama", "--out", tmp_path / "o2", "--sparsity")
    assert res.exit_code == 2 and "RWKV-7" in res.output
    res = _run("--model", models / "rwkv", "--out", tmp_path / "o3", "--cluster-head", "999")
    assert res.exit_code == 2 and "--cluster-head" in res.output
    res = _run("--out", tmp_path / "o4")
    assert res.exit_code == 2 and "--model" in res.output
