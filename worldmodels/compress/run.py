"""``wm compress``'s pipeline: factorise a world model's backbone, optionally recover it with
continued MLE (``run_pretrain`` with ``init=`` the compressed model) or by distillation from
the uncompressed model (``compress/distill.py``), measure, and write a normal world-model
directory plus ``compress.json`` / ``compress.md``.

    from worldmodels.compress.run import CompressConfig, run_compress
    res = run_compress(CompressConfig(model="runs/wm", out="runs/wm_svd4", svdfac=4, recover_steps=200))
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from worldmodels.compress.cluster_head import ClusterHeadConfig
from worldmodels.compress.sparsity import SparsityConfig
from worldmodels.evaluate import EvalConfig
from worldmodels.train.mle_config import MLEConfig, OptimConfig


def _recover_default() -> MLEConfig:
    return MLEConfig(steps=1, batch_size=16, optim=OptimConfig(lr=1e-3, warmup_steps=10),
                     eval_every=0, save_every=0, log_every=10, device="cpu", precision="fp32",
                     tensorboard=False)


@dataclass
class CompressConfig:
    """``wm compress``: RWKV-Lite compression of a world model (seeds.md §7).

    model: the world-model directory to compress (``wm pretrain`` / ``wm rlvr`` output).
    out: the compressed world-model directory (new; a normal world model).
    svdfac: rank = min(out, in) // svdfac for each target projection (RWKV-Lite: 4 or 8); 1 keeps full rank.
    variant: plain (x058: W2 W1 x) | relu_diag (x059 per seeds.md: W2 relu(W1 x) + d*x) | sqrelu_diag (x059 per RWKV-Lite's inference code: relu squared).
    targets: module-name suffixes to factorise; null = by model type (RWKV-7: attn.{r,k,v,o}_proj, ffn.key, ffn.value; Llama: q/k/v/o/gate/up/down_proj).
    recover_steps: continued-MLE steps on the model's recorded task data after factorising (0: none).
    recover: MLEConfig of the recovery run (its steps come from recover_steps).
    distill: recover by distillation (KL to the uncompressed model's next-token distributions on the training sequences) instead of continued MLE.
    distill_temperature: softmax temperature T of the distillation (loss scaled by T²).
    eval_batches: held-out micro-batches the losses are measured on (the same before and after).
    eval_batch_size: items per held-out micro-batch.
    eval: EvalConfig of task metrics (e.g. text-game accuracy) before / after; eval.items 0 = skip.
    sparsity: SparsityConfig of the FFN activation predictor (sparsity.enabled: --sparsity).
    cluster: ClusterHeadConfig of the clustered head (cluster.k: --cluster-head).
    device: where everything runs: cpu | cuda.
    """

    model: str = ""
    out: str = ""
    svdfac: int = 4
    variant: str = "plain"
    targets: list[str] | None = None
    recover_steps: int = 0
    recover: MLEConfig = field(default_factory=_recover_default)
    distill: bool = False
    distill_temperature: float = 1.0
    eval_batches: int = 8
    eval_batch_size: int = 16
    eval: EvalConfig = field(default_factory=lambda: EvalConfig(items=0, bootstrap=0))
    sparsity: SparsityConfig = field(default_factory=SparsityConfig)
    cluster: ClusterHeadConfig = field(default_factory=ClusterHeadConfig)
    device: str = "cpu"

    def __post_init__(self) -> None:
        from worldmodels.compress.lowrank import VARIANTS

        if not isinstance(self.svdfac, int) or self.svdfac < 1:
            raise ValueError(f"svdfac (--svdfac) must be an integer >= 1, got {self.svdfac!r}")
        if self.variant not in VARIANTS:
            raise ValueError(f"variant (--variant) must be one of {'|'.join(VARIANTS)}, got {self.variant!r}")
        if self.recover_steps < 0:
            raise ValueError(f"recover_steps (--recover-steps) must be >= 0, got {self.recover_steps}")
        if not self.distill_temperature > 0:
            raise ValueError(f"distill_temperature must be > 0, got {self.distill_temperature}")
        if self.distill and not self.recover_steps:
            raise ValueError("--distill needs --recover-steps N > 0 (the distillation steps)")
        if self.eval_batches < 1 or self.eval_batch_size < 1:
            raise ValueError(f"eval_batches and eval_batch_size must be >= 1, got {self.eval_batches}, "
                             f"{self.eval_batch_size}")
        if self.targets is not None and (not self.targets or not all(isinstance(t, str) and t for t in self.targets)):
            raise ValueError(f"targets (--targets) must be a non-empty list of module names or null, "
                             f"got {self.targets!r}")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be cpu or cuda, got {self.device!r}")


@dataclass
class RecordedTask:
    """The model's recorded task, unchanged (no fields: ``task_kwargs()`` is empty)."""

    task_name: ClassVar[str] = ""

    def task_kwargs(self) -> dict:
        return {}


def recorded_task_section(kind: str) -> RecordedTask:
    """A ``task:`` section naming task ``kind`` that rebuilds the model's recorded task
    unchanged (``for_pretrain(section, init=...)`` keeps the model's meta: its data and
    tokenizer). Fits tasks whose ``for_pretrain`` reads only ``task_kwargs`` on ``init`` (the
    text tasks); a video model needs its run's VideoTaskConfig (the command reads it)."""
    return dataclass(type("RecordedTask", (RecordedTask,), {"task_name": kind}))()


def _task_metrics(model, task, cfg: CompressConfig) -> dict | None:
    if not cfg.eval.items:
        return None
    from worldmodels.evaluate import evaluate

    res = evaluate(model, task, task.dataset("test"), cfg.eval, device=cfg.device, baselines=False)
    return {k: v["mean"] for k, v in res["metrics"].items()}


def _stage(model, task, batches, cfg) -> dict:
    from worldmodels.compress.measure import heldout_loss, model_size

    out = {**model_size(model), "loss": heldout_loss(model, batches)}
    metrics = _task_metrics(model, task, cfg)
    if metrics is not None:
        out["metrics"] = metrics
    return out


def _load(directory, device):
    from worldmodels.world_model import WorldModel

    return WorldModel.from_pretrained(directory, device=device, attn_implementation=None)


def _recover(cfg: CompressConfig, out: Path, kind: str, task_section) -> None:
    from worldmodels.models.config import BackboneConfig
    from worldmodels.pipelines import PretrainConfig, run_pretrain

    section = task_section if task_section is not None else recorded_task_section(kind)
    train = replace(cfg.recover, steps=cfg.recover_steps, device=cfg.device)
    run_pretrain(PretrainConfig(out=str(out), init=str(out), task=section, model=BackboneConfig(),
                                train=train))


def run_compress(cfg: CompressConfig, task_section: Any = None, log=print) -> dict:
    """Compress ``cfg.model`` into ``cfg.out`` (see the module docstring); returns what
    ``compress.json`` holds. ``task_section``: the recovery run's ``task:`` section (default:
    :func:`recorded_task_section`). Raises FileNotFoundError for a missing model,
    FileExistsError when ``cfg.out`` already holds a world model, ValueError for bad settings
    (targets that match nothing, --sparsity on a non-RWKV-7 model, K above the vocabulary)."""
    import torch

    from worldmodels.compress import lowrank
    from worldmodels.compress.measure import lm_batches
    from worldmodels.meta import WM_FILE
    from worldmodels.world_model import export_backbone, write_world_model_meta

    if not cfg.model or not cfg.out:
        raise ValueError("--model and --out are required")
    src, out = Path(cfg.model), Path(cfg.out)
    if not (src / WM_FILE).is_file():
        raise FileNotFoundError(f"--model {src}: no {WM_FILE} here (expected a world-model directory)")
    if (out / WM_FILE).exists() or (out.exists() and any(out.iterdir())):
        raise FileExistsError(f"--out {out} exists and is not empty; choose a new directory")
    wm = _load(src, cfg.device)
    task, model, kind = wm.task, wm.model, wm.meta["kind"]
    if cfg.cluster.k > model.get_output_embeddings().weight.shape[0]:
        raise ValueError(f"--cluster-head {cfg.cluster.k} exceeds the vocabulary "
                         f"({model.get_output_embeddings().weight.shape[0]} rows)")
    if cfg.sparsity.enabled:
        from worldmodels.compress.sparsity import ffn_key_modules

        ffn_key_modules(model)  # fails early, naming the requirement
    batches = lm_batches(task, "test", cfg.eval_batches, cfg.eval_batch_size)
    res: dict = {"model": str(src), "out": str(out), "kind": kind,
                 "model_type": model.config.model_type, "svdfac": cfg.svdfac, "variant": cfg.variant,
                 "held_out_tokens": sum(int((b["labels"][:, 1:] != -100).sum()) for b in batches)}
    res["before"] = _stage(model, task, batches, cfg)
    log(f"before: {res['before']['params'] / 1e6:.3f}M params, loss {res['before']['loss']:.4f}")
    torch.manual_seed(0)
    record = lowrank.factorise(model, cfg.svdfac, cfg.variant, cfg.targets)
    res["targets"], res["modules"] = record["targets"], len(record["modules"])
    res["after"] = _stage(model, task, batches, cfg)
    log(f"factorised {len(record['modules'])} projections: {res['after']['params'] / 1e6:.3f}M params, "
        f"loss {res['after']['loss']:.4f}")
    extra = {"compressed_from": str(src), "compression": {k: record[k] for k in ("svdfac", "variant", "targets")}}
    write_world_model_meta(out, task, extra=extra)
    export_backbone(out, model)
    if cfg.recover_steps and cfg.distill:
        from worldmodels.compress.distill import distill

        teacher = _load(src, cfg.device).model
        kl = distill(model, teacher, task, cfg.recover_steps, cfg.recover, cfg.distill_temperature, log)
        del teacher
        export_backbone(out, model)
        write_world_model_meta(out, task, extra={**extra, "recover_steps": cfg.recover_steps,
                                                 "recover_method": "distill"})
        model = _load(out, cfg.device).model
        res["recovered"] = {**_stage(model, task, batches, cfg), "steps": cfg.recover_steps,
                            "method": "distill", "kl_first": kl[0], "kl_last": kl[-1]}
    elif cfg.recover_steps:
        _recover(cfg, out, kind, task_section)
        write_world_model_meta(out, task, extra={**extra, "recover_steps": cfg.recover_steps,
                                                 "recover_method": "mle"})
        wm = _load(out, cfg.device)
        model = wm.model
        res["recovered"] = {**_stage(model, task, batches, cfg), "steps": cfg.recover_steps, "method": "mle"}
        log(f"recovered ({cfg.recover_steps} steps): loss {res['recovered']['loss']:.4f}")
    res["factor_params"] = res["before"]["params"] / res["after"]["params"]
    res["factor_bytes"] = res["before"]["bytes"] / res["after"]["bytes"]
    res["factor_params_no_embeddings"] = (res["before"]["params_no_embeddings"]
                                          / res["after"]["params_no_embeddings"])
    if cfg.sparsity.enabled:
        res["sparsity"] = _sparsity(model, task, batches, cfg)
    if cfg.cluster.k:
        res["cluster_head"] = _cluster(model, task, batches, cfg)
    (out / "compress.json").write_text(json.dumps(res, indent=1) + "\n")
    from worldmodels.compress.report import markdown

    (out / "compress.md").write_text(markdown(res))
    return res


def _sparsity(model, task, held_out, cfg: CompressConfig) -> dict:
    from worldmodels.compress import sparsity as sp
    from worldmodels.compress.measure import heldout_loss, lm_batches

    s = cfg.sparsity
    train = lm_batches(task, "train", max(1, s.max_tokens // 64), cfg.eval_batch_size)
    predictors = sp.fit_predictors(model, sp.collect_ffn_inputs(model, train, s.max_tokens), s)
    res = sp.evaluate_predictors(model, predictors, sp.collect_ffn_inputs(model, held_out, s.max_tokens))
    base = heldout_loss(model, held_out)
    with sp.masked_ffn(model, predictors):
        masked = heldout_loss(model, held_out)
    res["loss"], res["loss_masked"], res["loss_delta"] = base, masked, masked - base
    return res


def _cluster(model, task, held_out, cfg: CompressConfig) -> dict:
    from worldmodels.compress import cluster_head as ch
    from worldmodels.compress.measure import head_inputs, lm_batches

    c = cfg.cluster
    w = model.get_output_embeddings().weight.detach().float().cpu()
    head = ch.build_cluster_head(w, c.k, c)
    train = lm_batches(task, "train", max(1, c.max_tokens // 64), cfg.eval_batch_size)
    h, _ = head_inputs(model, train, c.max_tokens)
    ch.fit_scorer(head, h.cpu(), w, c)
    h, y = head_inputs(model, held_out, c.max_tokens)
    return ch.evaluate_cluster_head(head, h.cpu(), y.cpu(), w)


__all__ = ["CompressConfig", "recorded_task_section", "run_compress"]
