"""Text-game world model (issue 20): RLVR vs continued SFT from one SFT checkpoint, at equal compute.

One command per lane (CPU, one thread each; every (arm, seed) run is saved as it goes, so a
re-run skips finished runs and more seeds can be added later)::

    wm data build text-game --config data/recipes/text_game_tiny.yaml
    wm pretrain text-game --config data/recipes/text_game_pretrain_tiny.yaml --out runs/text_game/sft
    OMP_NUM_THREADS=1 python benchmarks/text_game_experiment.py --init runs/text_game/sft \\
        --arms rlvr_task_specific --seeds 0 1 2 --steps 100 --eval-every 25
    OMP_NUM_THREADS=1 python benchmarks/text_game_experiment.py --init runs/text_game/sft \\
        --arms sft --seeds 0 1 2          # after the matching RLVR runs: same CPU seconds each
    python benchmarks/text_game_experiment.py --report-only   # tables, docs/text_game_curves.png

Arms, all from the same SFT world model:

- ``rlvr_task_specific`` / ``rlvr_binary``: GRPO (``wm rlvr text-game``'s trainer) with the
  recipe ``data/recipes/text_game_rlvr_tiny.yaml``'s ``grpo:`` section (``--set grpo.x=y`` changes
  it), RLVR-World's RL sampling (every changed record plus 5 (task_specific) or 40 (binary)
  unchanged per 100; the unchanged draw seeded by the run's seed).
- ``sft``: continued SFT on every training record (AdamW, constant ``--sft-lr``, batch
  ``--sft-batch``, grad clip 1.0), given exactly the **training CPU seconds** (``time.process_time``
  of the single-threaded process, evaluation excluded) that the ``--match`` RLVR run of the same
  seed used; it is evaluated where that run's CPU seconds reached each of its evaluations.
  Equal compute here means equal CPU time on the same machine; both arms' wall seconds and the
  number of sequences they trained on are recorded too.

Held-out evaluation (greedy, ``--eval-items`` evenly spaced records of each set): held-out
records (``test.jsonl``: unseen episodes of the training games) and held-out games
(``test_games.jsonl``), accuracy (binary reward = 1) on all / changed / unchanged records, the
mean task-specific reward and the parse rate. The SFT model's evaluation is computed once and
is step 0 of every run. Writes ``<out>/runs/<arm>_s<seed>.json``, ``<out>/results.json`` and the
plot; ``text_game_report.py`` holds the summary and the markdown.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from text_game_report import markdown, plot, summarise  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ARMS = {"rlvr_task_specific": "task_specific", "rlvr_binary": "binary", "sft": None}
UNCHANGED_PER_CHANGED = {"task_specific": 0.05, "binary": 0.4}  # RLVR-World 100:5 and 100:40
SETS = ("records", "games")


def load(init: str, **task_kw):
    """(model, task) of the world model ``init``; ``task_kw`` override its recorded task."""
    from worldmodels.world_model import WorldModel

    wm = WorldModel.from_pretrained(init, device="cpu", **task_kw)
    return wm.model, wm.task


def make_eval(init: str, games: str, items: int, batch_size: int):
    """``fn(model) -> {"<set>/<metric>": value}`` on held-out records and held-out games."""
    from worldmodels.evaluate import EvalConfig, evaluate
    from worldmodels.tasks.text_game import TextGameTask
    from worldmodels.world_model import read_world_model_meta

    meta = read_world_model_meta(init)
    tasks = {"records": TextGameTask.from_meta(meta, init),
             "games": TextGameTask.from_meta(meta, init, test=games)}
    data = {k: t.dataset("test") for k, t in tasks.items()}
    cfg = EvalConfig(items=items, top_k=1, batch_size=batch_size, bootstrap=0)

    def fn(model) -> dict[str, float]:
        out = {}
        for name, t in tasks.items():
            res = evaluate(model, t, data[name], cfg, device="cpu", baselines=False)
            m = {k: v["mean"] for k, v in res["metrics"].items()}
            c, cc = m["changed_share"], m["correct_changed_share"]
            out.update({f"{name}/accuracy": m["accuracy"], f"{name}/task_specific": m["task_specific"],
                        f"{name}/parsed": m["parsed"], f"{name}/changed_share": c,
                        f"{name}/acc_changed": cc / c if c else float("nan"),
                        f"{name}/acc_unchanged": (m["accuracy"] - cc) / (1 - c) if c < 1 else float("nan")})
        return out

    return fn


def grpo_config(args, seed: int):
    from worldmodels.config import apply_overrides, from_dict, read_config_file
    from worldmodels.train.grpo_config import GRPOConfig

    base = dict(read_config_file(ROOT / args.recipe).get("grpo", {}))
    base.update(max_steps=args.steps, seed=seed, eval_steps=args.eval_every, device="cpu")
    return from_dict(GRPOConfig, apply_overrides({"grpo": base}, args.set)["grpo"])


def run_rlvr(args, arm: str, seed: int, eval_fn, init_eval: dict, save) -> dict:
    """GRPO for ``args.steps`` steps; CPU seconds of ``train_step`` only (evaluation excluded)."""
    from worldmodels.config import to_dict
    from worldmodels.rewards import build_reward

    spec = ARMS[arm]
    reward = build_reward(spec)
    from worldmodels.train.grpo import GRPOTrainer

    model, task = load(args.init, rl_sampling=True, rl_unchanged_ratio=UNCHANGED_PER_CHANGED[spec],
                       rl_seed=seed)
    cfg = grpo_config(args, seed)
    torch.manual_seed(seed)
    tr = GRPOTrainer(cfg, task, model, reward)
    records = [{"step": 0, "cpu_s": 0.0, "wall_s": 0.0, **{f"eval/{k}": v for k, v in init_eval.items()}}]
    cpu = wall = 0.0
    for step in range(1, args.steps + 1):
        c0, w0 = time.process_time(), time.perf_counter()
        m = tr.train_step()
        cpu, wall = cpu + time.process_time() - c0, wall + time.perf_counter() - w0
        rec = {"step": step, "cpu_s": cpu, "wall_s": wall,
               **{k: m[k] for k in ("reward", "reward_std_batch", "frac_reward_zero_std", "kl", "entropy",
                                    "completions/mean_length", "completions/clipped_ratio", "step_time_s")
                  if k in m}}
        if step % args.eval_every == 0 or step == args.steps:
            rec.update({f"eval/{k}": v for k, v in eval_fn(model.eval()).items()})
            save({"records": records + [rec], "complete": False})
        records.append(rec)
        if not args.quiet:
            print(f"{arm} s{seed} step {step} reward {m['reward']:.3f} zero_std "
                  f"{m.get('frac_reward_zero_std', float('nan')):.2f} cpu {cpu:.0f}s", flush=True)
    maybe_save_model(args, f"{arm}_s{seed}", model, task, {"reward": spec, "rlvr_step": args.steps})
    return {"records": records, "cpu_s": cpu, "wall_s": wall, "config": to_dict(cfg),
            "sequences": args.steps * cfg.prompts_per_step * cfg.num_generations, "complete": True,
            "train_items": len(tr.dataset)}


def run_sft(args, seed: int, eval_fn, init_eval: dict, save, matched: dict) -> dict:
    """Continued SFT until the CPU seconds of ``matched`` (an RLVR run of the same seed)."""
    from worldmodels.train.mle import forward_backward

    points = [(r["cpu_s"], r["step"]) for r in matched["records"] if r["step"] > 0 and
              any(k.startswith("eval/") for k in r)]
    model, task = load(args.init)
    ds = task.lm_dataset("train")
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=args.sft_lr, weight_decay=0.01)
    g = torch.Generator().manual_seed(seed)
    records = [{"step": 0, "cpu_s": 0.0, "wall_s": 0.0, **{f"eval/{k}": v for k, v in init_eval.items()}}]
    cpu = wall = 0.0
    step = 0
    for budget, rl_step in points:
        loss_sum = tokens = 0.0
        while cpu < budget:
            c0, w0 = time.process_time(), time.perf_counter()
            model.train()
            idx = torch.randint(len(ds), (args.sft_batch,), generator=g).tolist()
            opt.zero_grad(set_to_none=True)
            out = forward_backward(model, task, [task.collate([ds[i] for i in idx])], torch.device("cpu"))
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            cpu, wall = cpu + time.process_time() - c0, wall + time.perf_counter() - w0
            step += 1
            loss_sum, tokens = loss_sum + out["loss_sum"], tokens + out["loss_tokens"]
        rec = {"step": step, "cpu_s": cpu, "wall_s": wall, "matched_rlvr_step": rl_step,
               "loss": loss_sum / max(tokens, 1),
               **{f"eval/{k}": v for k, v in eval_fn(model.eval()).items()}}
        records.append(rec)
        save({"records": records, "complete": False})
        if not args.quiet:
            print(f"sft s{seed} step {step} (= rlvr step {rl_step}) loss {rec['loss']:.4f} "
                  f"acc {rec['eval/records/accuracy']:.3f}", flush=True)
    maybe_save_model(args, f"sft_s{seed}", model, task, {"continued_sft_steps": step})
    return {"records": records, "cpu_s": cpu, "wall_s": wall, "sequences": step * args.sft_batch,
            "lr": args.sft_lr, "batch": args.sft_batch, "complete": True}


def maybe_save_model(args, name: str, model, task, extra: dict) -> None:
    if args.save_models:
        from worldmodels.world_model import export_backbone, write_world_model_meta

        d = Path(args.out) / "models" / name
        write_world_model_meta(d, task, extra={"init": str(args.init), **extra})
        export_backbone(d, model)


def init_evaluation(args, eval_fn) -> dict:
    """The SFT model's evaluation (greedy: the same for every arm and seed), cached."""
    f = Path(args.out) / "init_eval.json"
    key = {"init": str(args.init), "items": args.eval_items, "games": args.games}
    if f.exists() and json.loads(f.read_text()).get("key") == key:
        return json.loads(f.read_text())["eval"]
    model, _ = load(args.init)
    t0 = time.perf_counter()
    res = eval_fn(model.eval())
    f.write_text(json.dumps({"key": key, "eval": res, "eval_wall_s": time.perf_counter() - t0}, indent=1))
    return res


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--init", default="runs/text_game/sft", help="the SFT world model")
    p.add_argument("--games", default="data/text_game/test_games.jsonl", help="held-out games' records")
    p.add_argument("--recipe", default="data/recipes/text_game_rlvr_tiny.yaml", help="its grpo: section")
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=100, help="GRPO steps")
    p.add_argument("--eval-every", type=int, default=25, help="GRPO steps between evaluations")
    p.add_argument("--eval-items", type=int, default=400, help="records of each held-out set")
    p.add_argument("--eval-batch", type=int, default=32)
    p.add_argument("--match", default="rlvr_task_specific", help="the RLVR arm whose CPU seconds sft gets")
    p.add_argument("--sft-lr", type=float, default=1e-4, help="continued SFT lr (the SFT schedule's last)")
    p.add_argument("--sft-batch", type=int, default=16, help="continued SFT records per step (SFT's)")
    p.add_argument("--set", action="append", default=[], help="GRPO override, e.g. grpo.learning_rate=1e-4")
    p.add_argument("--out", default="runs/text_game/experiment")
    p.add_argument("--tag", default="", help="suffix of run files (keeps variants apart)")
    p.add_argument("--plot", default="docs/text_game_curves.png")
    p.add_argument("--save-models", action="store_true", help="export each run as <out>/models/<arm>_s<seed>")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        eval_fn = make_eval(args.init, args.games, args.eval_items, args.eval_batch)
        init_eval = init_evaluation(args, eval_fn)
        for arm in args.arms:
            for seed in args.seeds:
                f = out / "runs" / f"{arm}{args.tag}_s{seed}.json"
                if f.exists() and json.loads(f.read_text()).get("complete"):
                    continue
                save = lambda res, f=f: f.write_text(json.dumps(res))  # noqa: E731
                print(f"== {arm}{args.tag} seed {seed}", flush=True)
                t0 = time.perf_counter()
                if ARMS[arm] is None:
                    m = out / "runs" / f"{args.match}{args.tag}_s{seed}.json"
                    if not (m.exists() and json.loads(m.read_text()).get("complete")):
                        print(f"sft s{seed} skipped: run {m} first (sft gets its CPU seconds)", flush=True)
                        continue
                    res = run_sft(args, seed, eval_fn, init_eval, save, json.loads(m.read_text()))
                    res["matched"] = m.name
                else:
                    res = run_rlvr(args, arm, seed, eval_fn, init_eval, save)
                res.update(arm=arm, seed=seed, overrides=args.set, total_wall_s=time.perf_counter() - t0,
                           command=" ".join(["python benchmarks/text_game_experiment.py", *sys.argv[1:]]))
                f.write_text(json.dumps(res))
    runs: dict[str, dict[int, dict]] = {}
    for f in sorted((out / "runs").glob(f"*{args.tag}_s*.json")):
        arm, seed = f.stem.rsplit("_s", 1)
        arm = arm[: len(arm) - len(args.tag)] if args.tag else arm
        if arm in ARMS:
            runs.setdefault(arm, {})[int(seed)] = json.loads(f.read_text())
    init_file = out / "init_eval.json"
    init_eval = json.loads(init_file.read_text())["eval"] if init_file.exists() else {}
    summary = summarise(runs, init_eval)
    (out / f"results{args.tag}.json").write_text(json.dumps(summary, indent=1))
    if runs:
        plot(runs, init_eval, ROOT / args.plot)
    print(markdown(summary))


if __name__ == "__main__":
    main()
