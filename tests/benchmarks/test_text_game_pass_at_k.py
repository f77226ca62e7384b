"""benchmarks/text_game_pass_at_k.py: pass@k per record kind from `wm eval text-game` folders."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import text_game_pass_at_k as tpk  # noqa: E402


def _folder(path: Path, n: int, accuracy: list[float], changed: list[float]) -> Path:
    path.mkdir(parents=True)
    (path / "eval.json").write_text(json.dumps({"n_samples": n}))
    (path / "eval_items.json").write_text(json.dumps({"metrics": {"accuracy": accuracy, "changed_share": changed}}))
    return path


def test_pass_at_k_is_split_by_changed_records(tmp_path, capsys):
    # 4 samples: changed records with 1 and 0 right samples, unchanged ones with 4 and 2
    f = _folder(tmp_path / "m", 4, [0.25, 0.0, 1.0, 0.5], [1, 1, 0, 0])
    t = tpk.table(f)
    assert t["changed"]["records"] == 2 and t["unchanged"]["records"] == 2 and t["all"]["records"] == 4
    # by hand: pass@2 of 1 right in 4 = 1 - C(3,2)/C(4,2) = 1/2; of 2 right in 4 = 1 - 1/6
    assert t["changed"]["pass_at_k"] == {1: pytest.approx(0.125), 2: pytest.approx(0.25), 4: pytest.approx(0.5)}
    assert t["unchanged"]["pass_at_k"][2] == pytest.approx((1 + 5 / 6) / 2)
    assert t["all"]["pass_at_k"][4] == pytest.approx(0.75)
    assert tpk.main([str(f), "--out", str(tmp_path / "o.json")]) == 0
    out = capsys.readouterr().out
    assert "| m | changed | 2 | 12.5 | 25.0 | 50.0 |" in out
    assert json.loads((tmp_path / "o.json").read_text())["m"]["all"]["pass_at_k"]["4"] == pytest.approx(0.75)


def test_folders_that_are_not_sampled_text_game_evals_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="eval.json"):
        tpk.load(tmp_path)
    f = _folder(tmp_path / "video", 4, [0.25], [1])
    (f / "eval_items.json").write_text(json.dumps({"metrics": {"mse": [0.1]}}))
    with pytest.raises(ValueError, match="changed_share"):
        tpk.load(f)
    g = _folder(tmp_path / "odd", 4, [0.3], [1])
    with pytest.raises(ValueError, match="count of right samples"):
        tpk.load(g)
