"""scripts/gpu_text_game.py: the prepared SmolLM2 text-game run for a lent GPU. Its summaries are
checked here on a fabricated evaluation, its stages' commands against the CLI, and (slow, with the
`smollm2` extra) the whole CPU dry run. It must never be first run on a device."""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_text_game.py"


@pytest.fixture(scope="module")
def gtg():
    return load_script("gpu_text_game")


def _eval_json(folder: Path) -> Path:
    folder.mkdir(parents=True)
    overall = {"changed": {"n": 6, "accuracy": 0.5, "parsed": 1.0},
               "unchanged": {"n": 4, "accuracy": 0.75, "parsed": 0.75},
               "all": {"n": 10, "accuracy": 0.6, "parsed": 0.9}}
    base = {"changed": {"n": 6, "accuracy": 0.0}, "unchanged": {"n": 4, "accuracy": 1.0},
            "all": {"n": 10, "accuracy": 0.4}}
    (folder / "eval.json").write_text(json.dumps({"items": 10, "accuracy_tables": {
        "sources": {"model": {"overall": overall}, "no_change": {"overall": base}},
        "prompt_tokens": {"median": 619, "max": 650}}}))
    return folder


def test_summaries_read_the_accuracy_tables(gtg, tmp_path):
    s = gtg.summarize_eval(_eval_json(tmp_path / "lora" / "eval"))
    assert s["accuracy"] == {"changed": 0.5, "unchanged": 0.75, "all": 0.6}
    assert (s["no_change_all"], s["parsed"], s["records"]["changed"]) == (0.4, 0.9, 6)
    res = {"tiny": False, "env": {"device": "x"}, "stages": {"lora": {
        "steps": {"sft": {"rc": 0, "s": 1.0}}, "evals": {"lora/eval": s, "lora/eval_games": {"error": "gone"}}}}}
    md = gtg.markdown(res)
    assert "| lora/eval | 10 | 50.0 | 75.0 | 60.0 | 40.0 | 90.0 | 619 / 650 |" in md
    assert "| lora/eval_games | – | gone |" in md and "| lora | sft | 0 | 1.0 |" in md
    with pytest.raises(FileNotFoundError):
        gtg.summarize_eval(tmp_path / "missing")


def test_every_stage_command_is_accepted_by_its_cli(gtg, tmp_path):
    """Each `wm` / benchmark command of every stage, with `--help` appended, parses its options:
    a renamed flag fails here, not on the device."""
    a = SimpleNamespace(tiny=True, gguf="x.gguf", bytesized32=tmp_path, items=3, real_items=1, new_tokens=24,
                        sft_steps=2, sft_batch=1, sft_minutes=1.0, batch_size=4)
    helps: dict[tuple, str] = {}
    for stage in gtg.STAGES:
        for name, cmd in gtg.stage_cmds(stage, a, tmp_path):
            first = next(i for i, c in enumerate(cmd) if c.startswith("--"))
            opts = [c for c in cmd[first:] if c.startswith("--")]
            help_cmd = tuple(cmd[:first] + ["--help"])
            if help_cmd not in helps:
                out = subprocess.run(help_cmd, cwd=ROOT, capture_output=True, text=True, timeout=120,
                                     env={**os.environ, "COLUMNS": "250", "TERM": "dumb"})
                assert out.returncode == 0, (stage, name, out.stderr[-500:])
                helps[help_cmd] = out.stdout.replace("\n", " ")
            text = helps[help_cmd]
            for o in opts:
                assert o in text, f"{stage}/{name}: {o} not an option of {' '.join(help_cmd)}"
    with pytest.raises(ValueError, match="unknown stage"):
        gtg.stage_cmds("nope", a, tmp_path)


def test_a_missing_gguf_is_one_clear_error(gtg, tmp_path, capsys):
    assert gtg.main(["--gguf", str(tmp_path / "none.gguf"), "--tiny", "--out", str(tmp_path / "o")]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.slow
def test_the_cpu_dry_run_goes_end_to_end(tmp_path):
    from worldmodels.models import gguf as G

    try:
        path = G.smollm2_gguf()
        G.require_gguf()
    except (FileNotFoundError, ImportError) as e:
        pytest.skip(f"SmolLM2 GGUF not available ({e})")
    shared = ROOT.parent / "shared" / "data" / "bytesized32"
    stages = ["data", "zero_compact", "lora"] + (["rlvr_world"] if shared.is_dir() else [])
    out = subprocess.run([sys.executable, str(SCRIPT), "--tiny", "--gguf", str(path),
                          "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work"),
                          "--stages", *stages], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    res = json.loads((tmp_path / "out" / "gpu_text_game.json").read_text())
    assert out.returncode == 0, out.stdout[-2000:]
    assert list(res["stages"]) == stages
    assert res["stages"]["lora"]["evals"]["lora/eval"]["records"]["all"] == 3
    assert (tmp_path / "out" / "gpu_text_game_logs.tar.gz").is_file()
