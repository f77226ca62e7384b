"""RLVR vs continued MLE from the pretrained tiny video world model (issue 5's experiment).

One command (CPU, nice'd; every (arm, seed) run is saved as it finishes, so a re-run skips
finished runs and extra seeds/steps can be added later)::

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python benchmarks/rlvr_experiment.py \
        --init runs/wm_video --steps 300 --seeds 0 1 2 --eval-every 25

Arms, all from the same pretrained weights and compared at equal optimizer steps (wall-clock
noted): ``rlvr_mae`` (GRPO, reward -MAE, tiny preset), ``rlvr_lpips_mae`` (GRPO, LPIPS+MAE;
skipped with a note when the LPIPS VGG weights are absent), ``rlvr_stlpips_mae`` (GRPO,
ST-LPIPS(alex)+MAE, RLVR-World's single-step reward with the shift-tolerant LPIPS that runs
offline; skipped with a note without the ``perceptual`` extra), ``mle`` (continued MLE with the
same optimizer, learning rate and prompts per step). ``--stlpips alex`` adds held-out ST-LPIPS
(``eval/stlpips``, ``eval/stlpips_1``) to every arm's evaluations::

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python benchmarks/rlvr_experiment.py \
        --init runs/wm_video --steps 300 --seeds 0 1 2 --eval-every 25 \
        --arms rlvr_stlpips_mae rlvr_mae mle --stlpips alex --out runs/rlvr_experiment_stlpips
 Held-out metrics (``evaluate.eval_fn`` of
``wm rlvr video``): multi-step (all 7 predicted frames) and single-step (first predicted frame)
MSE / PSNR / SSIM and the repetition rate, at step 0 and every ``--eval-every`` steps.
Writes ``<out>/results.json``, ``<out>/runs/<arm>_s<seed>.json``, ``docs/rlvr_heldout_mse.png``
and the results block of ``docs/rlvr.md``. ``--set grpo.beta=0`` etc. change the RLVR arms
(for the investigations in docs/rlvr.md); ``--tag`` keeps such variants apart.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from rlvr_report import markdown, plot, summarise, write_doc

ROOT = Path(__file__).resolve().parents[1]
ARMS = {"rlvr_mae": "mae", "rlvr_lpips_mae": "lpips+mae", "rlvr_stlpips_mae": "stlpips+mae", "mle": None}


def load(init: str, data: str | None, stlpips: str = "none"):
    """(model, task); ``stlpips`` alex|vgg adds held-out ST-LPIPS to the task's metrics."""
    from worldmodels.world_model import VideoWorldModel, read_world_model_meta

    wm = VideoWorldModel.from_pretrained(init, device="cpu")
    wm.task.data_root = data or read_world_model_meta(init).get("data_root")
    if stlpips != "none":
        from worldmodels import metrics as M

        wm.task.stlpips_metric = M.stlpips_fn(stlpips)
    return wm.model, wm.task


def run_rlvr(args, reward_spec: str, seed: int, eval_fn_factory, partial=None,
             partial_records: list | None = None) -> dict:
    from worldmodels.config import apply_overrides, from_dict, to_dict
    from worldmodels.rewards import build_reward
    from worldmodels.train.grpo import GRPOTrainer
    from worldmodels.train.grpo_config import GRPOConfig, grpo_preset

    reward = build_reward(reward_spec, "mean")
    model, task = load(args.init, args.data, args.stlpips)
    base = to_dict(grpo_preset("tiny", max_steps=args.steps, seed=seed, eval_steps=args.eval_every,
                               save_steps=args.eval_every, device="cpu"))
    cfg = from_dict(GRPOConfig, apply_overrides({"grpo": base}, args.set)["grpo"])
    records: list[dict] = []
    t0 = time.time()

    def log(rec: dict) -> None:
        records.append(rec)
        if partial is not None and any(k.startswith("eval/") for k in rec):
            partial({"records": records, "wall_s": time.time() - t0, "complete": False})

    out_dir, on_save = None, None
    if args.save_models:  # keep the trained model (and resumable checkpoints every save_steps)
        from worldmodels.world_model import export_backbone, write_world_model_meta

        out_dir = Path(args.save_models) / f"rlvr_{reward_spec}{args.tag}_s{seed}"

        def on_save(m, step, out_dir=out_dir):
            write_world_model_meta(out_dir, task, extra={"init": str(args.init), "reward": reward_spec,
                                                         "rlvr_step": step})
            export_backbone(out_dir, m)
    tr = GRPOTrainer(cfg, task, model, reward, eval_fn=eval_fn_factory(task), log_fn=log,
                     out_dir=out_dir, on_save=on_save)
    if out_dir is not None and tr.resume(out_dir) and partial_records:
        records[:] = [r for r in partial_records if r["step"] <= tr.step]
        print(f"resumed at step {tr.step} from {out_dir}", flush=True)
    tr.train(progress=not args.quiet)
    return {"records": records, "wall_s": time.time() - t0, "config": to_dict(cfg),
            "optimizer_steps": tr.optimizer_steps, "complete": True}


def run_mle(args, seed: int, eval_fn_factory, partial=None) -> dict:
    """Continued MLE: AdamW (same lr / clip as GRPO), ``prompts_per_step`` clips per step."""
    from worldmodels.train.grpo_config import grpo_preset
    from worldmodels.train.mle import forward_backward

    gcfg = grpo_preset("tiny")
    lr = float(dict(s.split("=", 1) for s in args.set).get("grpo.learning_rate", gcfg.learning_rate))
    model, task = load(args.init, args.data, args.stlpips)
    eval_fn = eval_fn_factory(task)
    ds = task.dataset("train", with_frames=False)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=gcfg.weight_decay)
    g = torch.Generator().manual_seed(seed)
    records = [{"step": 0, **{f"eval/{k}": v for k, v in eval_fn(model.eval()).items()}}]
    t_train, bs = 0.0, gcfg.prompts_per_step
    for step in range(1, args.steps + 1):
        t0 = time.time()
        model.train()
        idx = torch.randint(len(ds), (bs,), generator=g).tolist()
        opt.zero_grad(set_to_none=True)
        out = forward_backward(model, task, [task.collate([ds[i] for i in idx])], torch.device("cpu"))
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), gcfg.max_grad_norm)
        opt.step()
        t_train += time.time() - t0
        rec = {"step": step, "loss": out["loss_sum"] / max(out["loss_tokens"], 1), "grad_norm": float(gn)}
        if step % args.eval_every == 0 or step == args.steps:
            with torch.no_grad():
                rec.update({f"eval/{k}": v for k, v in eval_fn(model.eval()).items()})
        records.append(rec)
        if partial is not None and "eval/mse" in rec:
            partial({"records": records, "wall_s": t_train, "complete": False})
        if not args.quiet and step % 10 == 0:
            print(f"mle s{seed} step {step} loss {rec['loss']:.4f}", flush=True)
    return {"records": records, "wall_s": t_train, "optimizer_steps": args.steps, "complete": True}


def grad_snr(args, k: int) -> dict:
    """Gradient signal-to-noise at the pretrained model: pairwise cosine similarity of the GRPO
    policy gradient (tiny preset batch) on ``k`` independent batches, and the same for the MLE
    gradient on batches of the same number of clips. Cosine ~ 0 means one step's gradient is
    mostly noise at this batch size. Also: the batch size that would give cosine 0.5 when the
    noise is independent across samples (cos = S / (S + N/n))."""
    from worldmodels.rewards import build_reward
    from worldmodels.train.grpo import GRPOTrainer
    from worldmodels.train.grpo_config import grpo_preset
    from worldmodels.train.grpo_loss import grpo_loss, loss_denominator
    from worldmodels.train.mle import forward_backward
    from worldmodels.train.rollout import sequence_logprobs

    model, task = load(args.init, args.data)
    cfg = grpo_preset("tiny", beta=0.0, device="cpu")
    tr = GRPOTrainer(cfg, task, model, build_reward("mae"))

    def flat() -> torch.Tensor:
        return torch.cat([p.grad.reshape(-1).clone() for p in model.parameters()])

    def cos_stats(gs: list[torch.Tensor]) -> dict:
        cs = [float(torch.nn.functional.cosine_similarity(gs[i], gs[j], 0))
              for i in range(len(gs)) for j in range(i + 1, len(gs))]
        c = sum(cs) / len(cs)
        return {"cos_pairs": cs, "cos_mean": c}

    rl, t0 = [], time.time()
    for i in range(k):
        step = 10_000 + i
        prompts = tr.step_prompts(step)
        chunks = [tr._rollout_chunk(step, j, kk, prompts[s0:s0 + tr.chunk]) for j, s0, kk in tr.my_chunks()]
        tr._advantages(chunks)
        model.train()
        model.zero_grad(set_to_none=False)
        den = sum(loss_denominator(c.loss_mask, cfg.loss_type) for c in chunks)
        for c in chunks:
            lp = sequence_logprobs(model, c.sequences, c.prompt_len, c.segments)
            loss, _ = grpo_loss(lp, c.old_logprobs, c.advantages, c.loss_mask, normalizer=den)
            loss.backward()
        rl.append(flat())
    t_rl = time.time() - t0
    ds = task.dataset("train", with_frames=False)
    g, ml = torch.Generator().manual_seed(0), []
    for _ in range(k):
        idx = torch.randint(len(ds), (cfg.prompts_per_step,), generator=g).tolist()
        model.zero_grad(set_to_none=False)
        forward_backward(model, task, [task.collate([ds[i] for i in idx])], torch.device("cpu"))
        ml.append(flat())
    out = {"k": k, "prompts": cfg.prompts_per_step, "samples": cfg.prompts_per_step * cfg.num_generations,
           "grpo": cos_stats(rl), "mle": cos_stats(ml), "grpo_wall_s": t_rl}
    for name in ("grpo", "mle"):
        c = out[name]["cos_mean"]
        out[name]["batch_for_cos_0.5"] = (cfg.prompts_per_step * (1 - c) / c) if c > 0 else None
    return out


@torch.no_grad()
def tokenizer_floor(task, clips: int) -> dict:
    """MSE of the ground-truth future tokens decoded, on the evaluation clips (a lower bound
    for a model that predicts tokens; the evaluation picks the same evenly spaced clips)."""
    from worldmodels import metrics as M

    ds = task.dataset("test")
    idx = torch.linspace(0, len(ds) - 1, min(clips, len(ds))).round().long().unique().tolist()
    batch = task.collate([ds[i] for i in idx])
    c, T = task.spec.context_frames, task.spec.future_frames
    pred = task.decode_ids(batch["frame_ids"][:, c:c + T], batch.get("ctx_ids")).float().cpu()
    tgt = task.reward_items(batch)["target_frames"].float().cpu()
    return {"floor_mse": float(M.mse(pred, tgt).mean()),
            "floor_mse_1": float(M.mse(pred[:, :1], tgt[:, :1]).mean())}


def main(argv=None) -> None:
    import sys

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--init", default="runs/wm_video")
    p.add_argument("--data", default=None)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--eval-every", type=int, default=25)
    p.add_argument("--eval-clips", type=int, default=64)
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    p.add_argument("--set", action="append", default=[], help="GRPO override, e.g. grpo.beta=0")
    p.add_argument("--out", default="runs/rlvr_experiment")
    p.add_argument("--tag", default="", help="suffix of run files (keeps variants apart)")
    p.add_argument("--doc", default="", help="a doc to append the results block to (default: none; the results log is docs/results/)")
    p.add_argument("--plot", default=None, help="plot path (default docs/rlvr_heldout_mse<tag>.png)")
    p.add_argument("--report-only", action="store_true", help="only summarise finished runs")
    p.add_argument("--diagnose", type=int, default=0, metavar="N",
                   help="also evaluate the pretrained model with N samples per clip (best-of-N "
                        "headroom: how much better the best sample is than the average one)")
    p.add_argument("--grad-snr", type=int, default=0, metavar="K",
                   help="gradient signal-to-noise: cosine of GRPO / MLE gradients on K batches")
    p.add_argument("--save-models", default="", metavar="DIR",
                   help="save each RLVR run as a world model DIR/rlvr_<reward><tag>_s<seed> (checkpoint "
                        "at every eval; a re-run resumes from it)")
    p.add_argument("--temperature-sweep", type=float, nargs="*", default=[], metavar="T",
                   help="also evaluate the pretrained model sampled at these temperatures (is the "
                        "RL gain more than sharpening the sampler?)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: runs side by side)")
    p.add_argument("--stlpips", default="none", choices=["none", "alex", "vgg"],
                   help="held-out ST-LPIPS in every arm's evaluations (perceptual extra)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    args.command_line = " ".join(["python benchmarks/rlvr_experiment.py", *sys.argv[1:]])
    torch.set_num_threads(args.threads)
    from worldmodels.evaluate import EvalConfig, eval_fn

    ecfg = EvalConfig(items=args.eval_clips)
    eval_factory = lambda task: eval_fn(task, ecfg, torch.device("cpu"))  # noqa: E731
    out = Path(args.out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    notes, runs = [], {}

    def saver(f):
        return lambda res: f.write_text(json.dumps(res))

    for arm in args.arms:
        if ARMS[arm] and "lpips" in ARMS[arm]:
            from worldmodels.rewards import build_reward

            try:
                build_reward(ARMS[arm])
            except FileNotFoundError as e:  # LPIPS backbone / stlpips-pytorch absent
                notes.append(f"{arm} skipped: {ARMS[arm]} unavailable ({str(e).split('.')[0]}).")
                continue
        for seed in args.seeds:
            f = out / "runs" / f"{arm}{args.tag}_s{seed}.json"
            done = f.exists() and json.loads(f.read_text()).get("complete")
            if not done and not args.report_only:
                print(f"== {arm} seed {seed}", flush=True)
                res = (run_mle(args, seed, eval_factory, saver(f)) if ARMS[arm] is None
                       else run_rlvr(args, ARMS[arm], seed, eval_factory, saver(f),
                                     json.loads(f.read_text())["records"] if f.exists() else None))
                res.update(arm=arm, seed=seed, steps=args.steps, overrides=args.set)
                f.write_text(json.dumps(res))
    for f in sorted((out / "runs").glob(f"*{args.tag}_s*.json")):  # every finished/partial run
        arm, seed = f.stem[: -len(f"{args.tag}_s") - len(f.stem.split("_s")[-1])], int(f.stem.split("_s")[-1])
        if arm in ARMS:
            runs.setdefault(arm, {})[seed] = json.loads(f.read_text())
    snr_file = out / f"grad_snr{args.tag}.json"
    if args.grad_snr and not snr_file.exists():  # also with --report-only
        snr_file.write_text(json.dumps(grad_snr(args, args.grad_snr), indent=1))
    if snr_file.exists():
        d = json.loads(snr_file.read_text())
        notes.append(
            f"Gradient signal-to-noise at the pretrained model ({d['k']} independent batches of "
            f"{d['prompts']} prompts): mean pairwise cosine of the GRPO gradient "
            f"{d['grpo']['cos_mean']:.3f} ({d['samples']} samples/step) vs MLE "
            f"{d['mle']['cos_mean']:.3f} ({d['prompts']} clips/step). Prompts per step for "
            f"cosine 0.5 if the noise is independent per prompt: GRPO "
            f"{d['grpo']['batch_for_cos_0.5'] or float('inf'):.0f}, MLE "
            f"{d['mle']['batch_for_cos_0.5'] or float('inf'):.0f}.")
    diag_file = out / f"diagnose{args.tag}.json"
    if args.diagnose and not diag_file.exists():  # also with --report-only
        model, task = load(args.init, args.data)
        t0 = time.time()
        res = eval_fn(task, EvalConfig(items=args.eval_clips, n_samples=args.diagnose),
                      torch.device("cpu"))(model.eval())
        res["n_samples"], res["wall_s"] = args.diagnose, time.time() - t0
        res.update(tokenizer_floor(task, args.eval_clips))
        diag_file.write_text(json.dumps(res, indent=1))
    if diag_file.exists():
        d = json.loads(diag_file.read_text())
        notes.append(f"Pretrained model, {d['n_samples']} samples per clip at temperature 1: "
                     f"multi-step MSE mean {d['mse']:.4f} vs best-of-{d['n_samples']} "
                     f"{d['mse_best']:.4f} ({100 * (d['mse_best'] / d['mse'] - 1):+.1f}%); "
                     f"single-step {d['mse_1']:.4f} vs {d['mse_1_best']:.4f}. This gap is the "
                     f"headroom GRPO can exploit by shifting probability to better samples.")
        notes.append(f"Tokenizer floor (ground-truth tokens decoded, same clips): multi-step MSE "
                     f"{d['floor_mse']:.4f}, single-step {d['floor_mse_1']:.4f}: a world model "
                     f"whose tokens were all right would still score this.")
    temp_file = out / f"temperature{args.tag}.json"
    if args.temperature_sweep and not temp_file.exists():  # also with --report-only
        model, task = load(args.init, args.data)
        sweep = {str(t): eval_fn(task, EvalConfig(items=args.eval_clips, temperature=t),
                                 torch.device("cpu"))(model.eval())
                 for t in args.temperature_sweep}
        temp_file.write_text(json.dumps(sweep, indent=1))
    if temp_file.exists():
        d = json.loads(temp_file.read_text())
        notes.append("The pretrained model sampled at a lower temperature (no training; same "
                     "clips and eval seed): " + "; ".join(
                         f"T={t}: multi-step MSE {r['mse']:.5f}, single-step {r['mse_1']:.5f}, "
                         f"repetition {r['repetition_rate']:.3f}" for t, r in d.items()) + ".")
    summary = summarise(runs)
    args.runs_for_curves = runs
    (out / f"results{args.tag}.json").write_text(json.dumps({"summary": summary, "notes": notes,
                                                              "command": args.command_line}, indent=1))
    plot_path = Path(args.plot) if args.plot else ROOT / "docs" / f"rlvr_heldout_mse{args.tag}.png"
    args.plot_name = plot_path.name
    plot(runs, plot_path)
    print(json.dumps(summary, indent=1))
    if args.doc:
        write_doc(ROOT / args.doc, markdown(summary, notes, args))
    else:
        print(markdown(summary, notes, args))


if __name__ == "__main__":
    main()
