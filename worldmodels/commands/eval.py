"""`wm eval`: held-out evaluation of world models (``worldmodels.evaluate``).

    wm eval video --model runs/wm_video --data data/robot                  # -> runs/wm_video/eval
    wm eval video --model runs/wm_video --data data/robot --samples 8 --clips 128 --lpips none
    wm eval video --model runs/wm_video --data data/robot --lpips none --stlpips alex   # perceptual extra
    wm eval video --model runs/wm_mw            # its data folder, key map and split as recorded
    wm eval video --model runs/wm_mw --data other/metaworld --layout metaworld --test-every 5

The data folder and the episode flags (key map, split, crop/resize: ``commands/_episodes.py``)
default to what the world model recorded in its worldmodel.json. Token ids are cached under
``--cache-dir`` (default ``$WM_CACHE_DIR``, else ``~/.cache/worldmodels/tokens``), never in the
data folder.
"""

from __future__ import annotations

import typer

from worldmodels.commands._episodes import episode_config, episode_options

app = typer.Typer(help="Evaluate world models on held-out data (`wm eval video`).",
                  no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Evaluate world models on held-out data."""


def write_report(task, res: dict, out_dir) -> tuple[dict, str]:
    """``task.report(res)`` written as ``eval.json`` and ``eval.md`` into ``out_dir``; the
    per-item values (``res["per_item"]``, what `wm eval compare` pairs) as ``eval_items.json``."""
    import json
    from pathlib import Path

    res = dict(res)
    per_item = res.pop("per_item", None)
    data, md = task.report(res)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(data, indent=1) + "\n")
    (out / "eval.md").write_text(md)
    if per_item is not None:
        split = {k: res[k] for k in ("episodes", "test_files") if res.get(k)}  # which items: `wm eval pool`
        (out / "eval_items.json").write_text(json.dumps({"model": res.get("model"), "data": res.get("data"),
                                                         **split, **per_item}) + "\n")
    return data, md


def _load_items(path: str) -> dict:
    """``eval_items.json`` of a `wm eval` output folder (or the file itself)."""
    import json
    from pathlib import Path

    p = Path(path)
    p = p / "eval_items.json" if p.is_dir() else p
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no eval_items.json (run `wm eval <modality> --out {p.parent if p.suffix else p}` "
                                f"first; evaluations older than this command did not write it)")
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{p}: not valid JSON ({e})") from e


def _ci_text(ci: list[float] | None) -> str:
    """A bootstrap interval as printed by `wm eval compare` / `pool`."""
    return f"[{ci[0]:+.4g}, {ci[1]:+.4g}]" if ci else "(one item: no interval)"


@app.command("compare")
def compare(
    a: list[str] = typer.Option(..., "--a", help="arm A: a `wm eval` output folder (repeat for seeds)"),
    b: list[str] = typer.Option(..., "--b", help="arm B: a `wm eval` output folder (repeat for seeds)"),
    metric: str = typer.Option(..., "--metric", help="metric to compare, e.g. f1, accuracy, mse"),
    resamples: int = typer.Option(10000, "--resamples", min=1, help="bootstrap resamples over items"),
    out: str = typer.Option(None, "--out", help="also write the result as JSON here"),
) -> None:
    """Paired comparison of two models (or two arms of seeds) evaluated on the same items.

    Each arm's runs are averaged per item and the per-item difference A − B is bootstrapped
    over items, so a gap smaller than either model's own interval can still be resolved.

    \b
    wm eval web --model runs/rl_s0 --items 156 --out runs/rl_s0/eval_all   # ... each seed
    wm eval compare --a runs/rl_s0/eval_all --a runs/rl_s1/eval_all --b runs/sft_s0/eval_all --b runs/sft_s1/eval_all --metric f1
    """
    import json
    from pathlib import Path

    from worldmodels.evaluate import compare_runs

    try:
        res = compare_runs([_load_items(p) for p in a], [_load_items(p) for p in b], metric, resamples)
    except (FileNotFoundError, ValueError, KeyError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from e
    res.update(a_runs=list(a), b_runs=list(b))
    ci_s = _ci_text(res["diff"]["ci95"])
    typer.echo(f"{metric} on {res['items']} items: A {res['a']['mean']:.4g} ({len(a)} run(s)), "
               f"B {res['b']['mean']:.4g} ({len(b)} run(s)); A − B {res['diff']['mean']:+.4g}, "
               f"paired bootstrap 95 % {ci_s}; " + (
                   f"A better on {res['a_better']:.0%} of items, B on {res['b_better']:.0%}"
                   if res["a_better"] is not None else
                   f"A higher on {res['a_higher']:.0%} of items, B on {res['b_higher']:.0%}"))
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(res, indent=1) + "\n")


@app.command("pool")
def pool(
    fold: list[str] = typer.Option(..., "--fold", help="a `wm eval` output folder of one fold's model "
                                   "(repeat: one per fold)"),
    metric: str = typer.Option(..., "--metric", help="metric, e.g. mse"),
    baseline: str = typer.Option("copy_last", "--baseline", help="baseline the evaluation scored beside "
                                 "the model (video: copy_last, copy_last_tokens, tokenizer; text-game, web: no_change)"),
    versus: list[str] = typer.Option(None, "--vs", help="another recipe's eval folder for the same "
                                     "fold (repeat, in --fold order): also report this recipe − that one"),
    resamples: int = typer.Option(10000, "--resamples", min=1, help="bootstrap resamples over items"),
    out: str = typer.Option(None, "--out", help="also write the result as JSON here"),
) -> None:
    """Cross-validation: pool a recipe's folds (each model trained without its own held-out
    episodes and evaluated on them) and bootstrap model − baseline over all their items.

    A small dataset leaves few held-out clips per split; k folds give k times as many, each
    scored by a model that never saw it. Folds that evaluated the same episodes (video) or the
    same records of one data file (text-game, web) are refused: pooled items must be disjoint.

    \b
    wm pretrain video --config R.yaml --held-out a/1.npz,b/1.npz --out runs/cv/wm_f1   # ... each fold
    wm eval video --model runs/cv/wm_f1 --out runs/cv/wm_f1/eval                       # ... each fold
    wm eval pool --fold runs/cv/wm_f0/eval --fold runs/cv/wm_f1/eval ... --metric mse --baseline copy_last
    wm eval pool --fold runs/cv/wm_f0/eval ... --vs runs/cv/scratch_f0/eval ... --metric mse   # recipe A − B
    """
    import json
    from pathlib import Path

    from worldmodels.evaluate import pool_folds

    try:
        res = pool_folds([_load_items(p) for p in fold], metric, baseline, resamples,
                         versus=[_load_items(p) for p in versus] if versus else None)
    except (FileNotFoundError, ValueError, KeyError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from e
    res["fold_runs"] = list(fold)
    ci_s = _ci_text(res["diff"]["ci95"])
    for path, f in zip(fold, res["folds"], strict=True):
        typer.echo(f"  {path}: {f['items']} items, model {f['model']:.4g}, {baseline} {f['baseline']:.4g}, "
                   f"difference {f['diff']:+.4g}")
    better = (f"; the model better on {res['model_better']:.0%} of items"
              if res["model_better"] is not None else "")
    typer.echo(f"{metric} over {len(fold)} folds, {res['items']} items: model {res['model']:.4g}, {baseline} "
               f"{res['baseline_mean']:.4g}; model − {baseline} {res['diff']['mean']:+.4g}, "
               f"bootstrap 95 % {ci_s}{better}")
    if versus:
        v = res["versus"]
        typer.echo(f"versus {len(versus)} folds of the other recipe: {v['model']:.4g}; this − other "
                   f"{v['diff']['mean']:+.4g}, paired bootstrap 95 % {_ci_text(v['diff']['ci95'])}")
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(res, indent=1) + "\n")


@app.command("video")
@episode_options
def video(
    model: str = typer.Option(..., "--model", help="world-model directory (wm pretrain/rlvr --out)"),
    data: str = typer.Option(None, "--data", help="episode folder, its test split used (default: "
                             "the model's recorded one)"),
    cache_dir: str = typer.Option(None, "--cache-dir", help="token-id cache (default: "
                                  "$WM_CACHE_DIR, else ~/.cache/worldmodels/tokens)"),
    out: str = typer.Option(None, "--out", help="output folder (default: <model>/eval)"),
    samples: int = typer.Option(4, "--samples", min=1, help="samples per clip (best-of-n)"),
    clips: int = typer.Option(64, "--clips", min=1, help="held-out clips (evenly spaced)"),
    future: int = typer.Option(None, "--future", min=1, help="multi-step frames (default: the model's; 7 for a single-step model)"),
    batch_size: int = typer.Option(16, "--batch-size", min=1),
    gifs: int = typer.Option(4, "--gifs", min=0, help="side-by-side GIFs to write"),
    lpips: str = typer.Option("vgg", "--lpips", help="LPIPS backbone vgg|alex|squeeze, or none"),
    stlpips: str = typer.Option("none", "--stlpips", help="shift-tolerant LPIPS alex|vgg (perceptual extra), or none"),
    temperature: float = typer.Option(1.0, "--temperature", min=1e-6),
    top_k: int = typer.Option(None, "--top-k", min=1),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("auto", "--device"),
    episodes: dict | None = None,
) -> None:
    """Single-step and multi-step metrics (MSE, MAE, PSNR, SSIM, LPIPS, token accuracy,
    repetition) with bootstrap intervals, beside copy-last-frame and the tokenizer ceiling."""
    import logging
    from pathlib import Path

    from worldmodels import metrics as M
    from worldmodels.evaluate import EvalConfig, evaluate
    from worldmodels.world_model import WorldModel

    use_st = stlpips.lower() != "none"
    if use_st:  # asked for explicitly: a missing package or a bad name stops here, before loading
        from worldmodels import stlpips as ST

        try:
            ST.canonical_net(stlpips)
            ST.import_stlpips()
        except (ValueError, FileNotFoundError) as e:
            typer.echo(f"error: --stlpips {stlpips}: {e}", err=True)
            raise typer.Exit(code=2) from e
    try:
        given = {"data_root": data, "cache_dir": cache_dir}
        wm = WorldModel.from_pretrained(model, device=device, episodes=episode_config(episodes),
                                        **{k: v for k, v in given.items() if v})
    except (FileNotFoundError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from e
    task = wm.task
    task.horizon = future or (task.spec.future_frames if task.spec.mode == "multi" else 7)
    note = None
    if lpips.lower() != "none":
        try:
            task.lpips_metric = M.lpips_fn(lpips, wm.device)
        except M.LPIPSWeightsMissing as e:
            note = f"LPIPS skipped: {e}"
            logging.getLogger(__name__).warning(note)
    if use_st:
        try:
            task.stlpips_metric = M.stlpips_fn(stlpips, wm.device)
        except M.STLPIPSUnavailable as e:
            typer.echo(f"error: --stlpips {stlpips}: {e}", err=True)
            raise typer.Exit(code=2) from e
    out_dir = Path(out) if out else Path(model) / "eval"
    try:
        ds = task.eval_dataset("test")
    except (FileNotFoundError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from e
    cfg = EvalConfig(items=clips, n_samples=samples, temperature=temperature, top_k=top_k, seed=seed,
                     batch_size=batch_size)
    res = evaluate(wm.model, task, ds, cfg, device=wm.device, examples=gifs, out_dir=out_dir,
                   progress=True)
    res.update(model=str(model), data=str(task.data_root), note=note,
               episodes=task.episodes_record(),
               test_files=task.split_files("test"))
    _, md = write_report(task, res, out_dir)
    if len(ds) < 30:
        typer.echo(f"warning: only {len(ds)} held-out clips: the intervals below are wide", err=True)
    typer.echo(md)


from worldmodels.commands.text_game import register_eval  # noqa: E402  (wm eval text-game)

register_eval(app)

from worldmodels.commands.web import register_eval as _register_web  # noqa: E402  (wm eval web)

_register_web(app)
