"""RLVR vs continued SFT from one SFT world model, at equal compute: the harness shared by the
language modalities' experiments (``text_game_experiment.py``, ``web_experiment.py``).

An :class:`Experiment` names a modality's arms (arm -> reward name; ``None`` = continued SFT),
its held-out evaluation and its bar; :func:`main` runs and reports it:

- RLVR arms: GRPO (the ``wm rlvr`` trainer) with the recipe's ``grpo:`` section (``--set
  grpo.x=y`` changes it) for ``--steps`` steps; CPU seconds of ``train_step`` only.
- ``sft``: continued SFT on every training record (AdamW, constant ``--sft-lr``, batch
  ``--sft-batch``, grad clip 1.0), given exactly the **training CPU seconds**
  (``time.process_time`` of the single-threaded process, evaluation excluded) that the
  ``--match`` RLVR run of the same seed used, and evaluated where that run's CPU seconds reached
  each of its evaluations. Equal compute means equal CPU time on the same machine; wall seconds
  and the number of sequences trained on are recorded too.

Every (arm, seed) run is saved as it goes (``<out>/runs/<arm><tag>_s<seed>.json``); a re-run
skips finished runs, so seeds can be added later. The SFT model's (greedy) evaluation is computed
once (``<out>/init_eval.json``) and is step 0 of every run. ``--report-only`` rebuilds
``<out>/results<tag>.json``, the markdown and the plot (``rlvr_vs_sft_report.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rlvr_vs_sft_report import markdown, plot, summarise  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Experiment:
    """One modality's RLVR-vs-continued-SFT experiment.

    Fields:
        name: the modality, e.g. "text-game" (titles, the command line recorded in each run).
        script: the script's path relative to the repository (recorded as the run's command).
        arms: arm -> reward name (``worldmodels.rewards`` registry); ``None`` marks continued SFT.
        sets: held-out sets evaluated, e.g. ("records", "games"); metric keys are "<set>/<column>".
        columns: metric columns reported per set, in table order; the first is the headline.
        labels: column -> table header.
        paired_columns: columns whose paired differences against continued SFT are printed.
        defaults: argparse defaults: init, heldout (the second held-out file), recipe, out,
            match (the RLVR arm whose CPU seconds ``sft`` gets), steps, eval_every,
            eval_items, eval_batch, sft_lr, sft_batch.
        make_eval: ``(args) -> fn(model) -> {"<set>/<column>": value}``; it applies
            :func:`task_overrides` to the tasks it builds.
        rl_task_kwargs: ``(reward name, seed) -> overrides`` of the world model's recorded task
            for an RLVR run (e.g. RLVR-World's changed/unchanged sampling); default none.
        baseline_row: ``(init_eval, set) -> {column: value}`` of a trivial baseline's row in the
            table ("no change"), or None.
        bar: ``(summary) -> dict | None``: the issue's bar, with "met" and a "text" line.
        title: the plot's title.
    """

    name: str
    script: str
    arms: dict[str, str | None]
    sets: tuple[str, ...]
    columns: tuple[str, ...]
    labels: dict[str, str]
    defaults: dict
    make_eval: Callable
    paired_columns: tuple[str, ...] = ()
    rl_task_kwargs: Callable = lambda reward, seed: {}
    baseline_row: Callable = lambda init_eval, st: None
    bar: Callable = lambda summary: None
    title: str = ""
    colors: dict = field(default_factory=dict)


def load(init: str, **task_kw):
    """(model, task) of the world model ``init``; ``task_kw`` override its recorded task."""
    from worldmodels.world_model import WorldModel

    wm = WorldModel.from_pretrained(init, device="cpu", **task_kw)
    return wm.model, wm.task


def evaluate_sets(tasks: dict, items: int, batch_size: int) -> Callable:
    """``fn(model) -> {"<set>/<metric>": mean}`` over each ``tasks[set]``'s test split (greedy,
    the first ``items`` of it evenly spaced by :func:`worldmodels.evaluate.evaluate`)."""
    from worldmodels.evaluate import EvalConfig, evaluate

    data = {k: t.dataset("test") for k, t in tasks.items()}
    cfg = EvalConfig(items=items, top_k=1, batch_size=batch_size, bootstrap=0)

    def fn(model) -> dict[str, float]:
        out = {}
        for name, t in tasks.items():
            res = evaluate(model, t, data[name], cfg, device="cpu", baselines=False)
            out.update({f"{name}/{k}": v["mean"] for k, v in res["metrics"].items()})
        return out

    return fn


def grpo_config(args, seed: int):
    from worldmodels.config import apply_overrides, from_dict, read_config_file
    from worldmodels.train.grpo_config import GRPOConfig

    base = dict(read_config_file(ROOT / args.recipe).get("grpo", {}))
    base.update(max_steps=args.steps, seed=seed, eval_steps=args.eval_every, device="cpu")
    return from_dict(GRPOConfig, apply_overrides({"grpo": base, "task": {}}, args.set)["grpo"])


def task_overrides(args) -> dict:
    """The ``--set task.<field>=<value>`` overrides: applied to the recorded task of every arm's
    model and of the evaluation (e.g. ``task.max_new_tokens``)."""
    from worldmodels.config import apply_overrides

    return apply_overrides({"grpo": {}, "task": {}}, args.set)["task"]


def run_rlvr(exp: Experiment, args, arm: str, seed: int, eval_fn, init_eval: dict, save) -> dict:
    """GRPO for ``args.steps`` steps; CPU seconds of ``train_step`` only (evaluation excluded)."""
    from worldmodels.config import to_dict
    from worldmodels.rewards import build_reward
    from worldmodels.train.grpo import GRPOTrainer

    spec = exp.arms[arm]
    reward = build_reward(spec)
    model, task = load(args.init, **task_overrides(args), **exp.rl_task_kwargs(spec, seed))
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
    maybe_save_model(args, arm, seed, model, task, {"reward": spec, "rlvr_step": args.steps})
    return {"records": records, "cpu_s": cpu, "wall_s": wall, "config": to_dict(cfg),
            "sequences": args.steps * cfg.prompts_per_step * cfg.num_generations, "complete": True,
            "train_items": len(tr.dataset)}


def run_sft(exp: Experiment, args, seed: int, eval_fn, init_eval: dict, save, matched: dict) -> dict:
    """Continued SFT until the CPU seconds of ``matched`` (an RLVR run of the same seed)."""
    from worldmodels.train.mle import forward_backward

    points = [(r["cpu_s"], r["step"]) for r in matched["records"] if r["step"] > 0 and
              any(k.startswith("eval/") for k in r)]
    model, task = load(args.init, **task_overrides(args))
    ds = task.lm_dataset("train")
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=args.sft_lr, weight_decay=0.01)
    g = torch.Generator().manual_seed(seed)
    records = [{"step": 0, "cpu_s": 0.0, "wall_s": 0.0, **{f"eval/{k}": v for k, v in init_eval.items()}}]
    cpu = wall = 0.0
    step = 0
    head = f"eval/{exp.sets[0]}/{exp.columns[0]}"
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
               "loss": loss_sum / tokens if tokens else None,  # None: no step fit before this point
               **{f"eval/{k}": v for k, v in eval_fn(model.eval()).items()}}
        records.append(rec)
        save({"records": records, "complete": False})
        if not args.quiet:
            print(f"sft s{seed} step {step} (= rlvr step {rl_step}) loss {rec['loss']} "
                  f"{head[5:]} {rec[head]:.3f}", flush=True)
    maybe_save_model(args, "sft", seed, model, task, {"continued_sft_steps": step})
    return {"records": records, "cpu_s": cpu, "wall_s": wall, "sequences": step * args.sft_batch,
            "lr": args.sft_lr, "batch": args.sft_batch, "complete": True}


def run_name(arm: str, tag: str, seed: int) -> str:
    """``<arm><tag>_s<seed>``: the name of a run's file (``<out>/runs/<name>.json``) and model."""
    return f"{arm}{tag}_s{seed}"


def maybe_save_model(args, arm: str, seed: int, model, task, extra: dict) -> None:
    """With ``--save-models``, the run's model as ``<out>/models/<run_name>``: named like its run
    file, tag included, so variants under one ``--out`` never overwrite each other's models."""
    if args.save_models:
        from worldmodels.world_model import export_backbone, write_world_model_meta

        d = Path(args.out) / "models" / run_name(arm, args.tag, seed)
        write_world_model_meta(d, task, extra={"init": str(args.init), **extra})
        export_backbone(d, model)


def init_evaluation(args, eval_fn) -> dict:
    """The SFT model's evaluation (greedy: the same for every arm and seed), cached."""
    f = Path(args.out) / "init_eval.json"
    key = {"init": str(args.init), "items": args.eval_items, "games": args.heldout}
    if task_overrides(args):
        key["task"] = task_overrides(args)
    if f.exists() and json.loads(f.read_text()).get("key") == key:
        return json.loads(f.read_text())["eval"]
    model, _ = load(args.init)
    t0 = time.perf_counter()
    res = eval_fn(model.eval())
    f.write_text(json.dumps({"key": key, "eval": res, "eval_wall_s": time.perf_counter() - t0}, indent=1))
    return res


def parser(exp: Experiment, doc: str) -> argparse.ArgumentParser:
    d = exp.defaults
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--init", default=d["init"], help="the SFT world model")
    p.add_argument("--heldout", "--games", dest="heldout", default=d["heldout"],
                   help=f"the second held-out file ({exp.sets[1]})")
    p.add_argument("--recipe", default=d["recipe"], help="its grpo: section")
    p.add_argument("--arms", nargs="+", default=list(exp.arms), choices=list(exp.arms))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=d.get("steps", 100), help="GRPO steps")
    p.add_argument("--eval-every", type=int, default=d.get("eval_every", 25), help="GRPO steps between evaluations")
    p.add_argument("--eval-items", type=int, default=d.get("eval_items", 400), help="records of each held-out set")
    p.add_argument("--eval-batch", type=int, default=d.get("eval_batch", 32))
    p.add_argument("--match", default=d["match"], help="the RLVR arm whose CPU seconds sft gets")
    p.add_argument("--sft-lr", type=float, default=d.get("sft_lr", 1e-4), help="continued SFT lr (the SFT schedule's last)")
    p.add_argument("--sft-batch", type=int, default=d.get("sft_batch", 16), help="continued SFT records per step (SFT's)")
    p.add_argument("--set", action="append", default=[],
                   help="override, e.g. grpo.learning_rate=1e-4 or task.max_new_tokens=128")
    p.add_argument("--out", default=d["out"])
    p.add_argument("--tag", default="", help="suffix of run files (keeps variants apart)")
    p.add_argument("--plot", default=None,
                   help="curves figure (default <out>/curves<tag>.png; the docs figure only when named)")
    p.add_argument("--save-models", action="store_true", help="export each run as <out>/models/<arm><tag>_s<seed>")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--quiet", action="store_true")
    return p


def _complete(f: Path) -> bool:
    return f.exists() and bool(json.loads(f.read_text()).get("complete"))


def main(exp: Experiment, doc: str, argv=None) -> None:
    args = parser(exp, doc).parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        eval_fn = exp.make_eval(args)
        init_eval = init_evaluation(args, eval_fn)
        for arm in args.arms:
            for seed in args.seeds:
                f = out / "runs" / f"{run_name(arm, args.tag, seed)}.json"
                if _complete(f):
                    continue
                save = lambda res, f=f: f.write_text(json.dumps(res))  # noqa: E731
                print(f"== {arm}{args.tag} seed {seed}", flush=True)
                t0 = time.perf_counter()
                if exp.arms[arm] is None:
                    m = out / "runs" / f"{run_name(args.match, args.tag, seed)}.json"
                    if not _complete(m):
                        print(f"sft s{seed} skipped: run {m} first (sft gets its CPU seconds)", flush=True)
                        continue
                    res = run_sft(exp, args, seed, eval_fn, init_eval, save, json.loads(m.read_text()))
                    res["matched"] = m.name
                else:
                    res = run_rlvr(exp, args, arm, seed, eval_fn, init_eval, save)
                res.update(arm=arm, seed=seed, overrides=args.set, total_wall_s=time.perf_counter() - t0,
                           command=" ".join([f"python {exp.script}", *sys.argv[1:]]))
                f.write_text(json.dumps(res))
    runs: dict[str, dict[int, dict]] = {}
    for f in sorted((out / "runs").glob(f"*{args.tag}_s*.json")):
        arm, seed = f.stem.rsplit("_s", 1)
        arm = arm[: len(arm) - len(args.tag)] if args.tag else arm
        if arm in exp.arms:
            runs.setdefault(arm, {})[int(seed)] = json.loads(f.read_text())
    init_file = out / "init_eval.json"
    init_eval = json.loads(init_file.read_text())["eval"] if init_file.exists() else {}
    summary = summarise(exp, runs, init_eval)
    (out / f"results{args.tag}.json").write_text(json.dumps(summary, indent=1))
    if runs:
        plot(exp, runs, init_eval, ROOT / args.plot if args.plot else out / f"curves{args.tag}.png")
    print(markdown(exp, summary))
