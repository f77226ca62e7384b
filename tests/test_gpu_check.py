"""scripts/gpu_check.py: the prepared device script runs end to end on CPU (tiny shapes) and
checks the kernels issue's bars correctly. It must never be first run on a device."""

import json

import pytest

from tests.scripts import load_script


@pytest.fixture(scope="module")
def gpu_check():
    return load_script("gpu_check")


def _att(d, n, pas, speed, tflops):
    return {"op": "attention", "impl": "triton", "D": d, "N": n, "pass": pas,
            "speedup_vs_sdpa": speed, "tflops": tflops}


def test_targets_use_the_largest_length_and_the_worst_case(gpu_check):
    rows = [_att(64, 1024, "fwd", 0.5, 100.0),            # small N: ignored
            _att(64, 8192, "fwd", 0.95, 450.0), _att(64, 8192, "fwd", 0.85, 420.0),  # causal/full
            _att(64, 8192, "bwd", 0.81, 300.0),
            {"op": "vq", "impl": "triton_fused", "N": 10, "K": 10, "speedup_vs_chunked": 9.0},
            {"op": "vq", "impl": "triton_fused", "N": 1000, "K": 100, "speedup_vs_chunked": 2.0}]
    got = {t["target"]: t for t in gpu_check.targets(rows)}
    fwd = got["attention fwd vs SDPA, D=64"]
    assert (fwd["value"], fwd["at_N"], fwd["met"]) == (0.85, 8192, False)
    assert got["attention fwd TFLOP/s, D=64"]["met"] is True     # 420 >= 400
    assert got["attention bwd vs SDPA, D=64"]["met"] is True     # 0.81 >= 0.8
    assert got["attention fwd vs SDPA, D=128"]["met"] is None    # not measured
    vq = got["VQ vs chunked torch, N=1000, K=100"]
    assert (vq["value"], vq["met"]) == (2.0, False)
    assert all(t["met"] is None for t in gpu_check.targets(rows, dry_run=True))


def test_cpu_dry_run_writes_json_and_markdown(gpu_check, tmp_path):
    rc = gpu_check.main(["--tiny", "--out", str(tmp_path), "--stages", "env,attention,vq"])
    assert rc == 0
    res = json.loads((tmp_path / "gpu_check.json").read_text())
    assert [s["stage"] for s in res["stages"]] == ["env", "attention", "vq"]
    assert all(s["status"] == "ok" for s in res["stages"])
    timed = [r for r in res["rows"] if r["op"] == "attention"]
    assert {r["D"] for r in timed} == {64, 128} and {r["impl"] for r in timed} == {"triton", "sdpa_flash"}
    checks = [r for r in res["rows"] if r["op"] == "attention_check"]
    assert checks and all(max(r["rel_rms"].values()) < 1e-4 for r in checks)
    vq = [r for r in res["rows"] if r["op"] == "vq_check"]
    assert vq[0]["index_agreement"] == 1.0
    md = (tmp_path / "gpu_check.md").read_text()
    assert "NOT speed figures" in md and "| attention fwd vs SDPA, D=64 |" in md


def test_unknown_stage_is_a_usage_error(gpu_check, tmp_path, capsys):
    assert gpu_check.main(["--tiny", "--out", str(tmp_path), "--stages", "env,warp"]) == 2
    assert "warp" in capsys.readouterr().err


def test_rollout_lines_come_back_as_one_archive(gpu_check, tmp_path):
    """The device returns at most 8 files from $OUT: the rollout stage packs each line's files
    into rollout.tar.gz; without CUDA and fla the RWKV-7 stage records a skip, not a failure."""
    import tarfile

    rc = gpu_check.main(["--tiny", "--out", str(tmp_path), "--stages", "rollout,rwkv7_fla"])
    assert rc == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["gpu_check.json", "gpu_check.md", "rollout.tar.gz"]
    with tarfile.open(tmp_path / "rollout.tar.gz") as tar:
        inside = [n for n in tar.getnames() if n.endswith("bench_rollout.json")]
    assert len(inside) == 2  # the tiny dry run's fixed-length line and its text line
    res = json.loads((tmp_path / "gpu_check.json").read_text())
    fla = [r for r in res["rows"] if r["op"] == "rwkv7_fla"]
    assert len(fla) == 1 and "skipped" in fla[0]
    assert "Skipped: needs CUDA" in (tmp_path / "gpu_check.md").read_text()
