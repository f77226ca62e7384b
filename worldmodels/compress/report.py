"""``compress.md``: the ``compress.json`` result of ``wm compress`` as a short markdown report."""

from __future__ import annotations


def _f(x, fmt=".4f") -> str:
    return "–" if x is None else format(x, fmt)


def markdown(res: dict) -> str:
    """The report of one ``run_compress`` result (sizes, losses, sparsity, clustered head)."""
    b, a, r = res["before"], res["after"], res.get("recovered")
    lines = [f"# wm compress: {res['model']} -> {res['out']}", "",
             f"RWKV-Lite low-rank factorisation: svdfac {res['svdfac']}, variant {res['variant']}, "
             f"{res['modules']} projections ({', '.join(res['targets'])}); model type "
             f"{res['model_type']}, task {res['kind']}. Held-out loss: mean next-token "
             f"cross-entropy (nats) over {res['held_out_tokens']} labelled tokens.", "",
             "| stage | params | bytes | params w/o embeddings | held-out loss | Δ loss |",
             "|---|---|---|---|---|---|"]
    for name, s in (("original", b), ("factorised", a), ("recovered", r)):
        if s is None:
            continue
        delta = s["loss"] - b["loss"]
        how = f" ({s['steps']} steps {s.get('method', 'mle')})" if "steps" in s else ""
        lines.append(f"| {name}{how} | "
                     f"{s['params']:,} | {s['bytes']:,} | {s['params_no_embeddings']:,} | "
                     f"{s['loss']:.4f} | {delta:+.4f} |")
    lines += ["", f"Factor: params {res['factor_params']:.2f}x, bytes {res['factor_bytes']:.2f}x, "
              f"params without embeddings {res['factor_params_no_embeddings']:.2f}x."]
    metrics = [(n, s["metrics"]) for n, s in (("original", b), ("factorised", a), ("recovered", r))
               if s is not None and "metrics" in s]
    if metrics:
        names = list(metrics[0][1])
        lines += ["", "| stage | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        lines += [f"| {n} | " + " | ".join(_f(m.get(k)) for k in names) + " |" for n, m in metrics]
    sp = res.get("sparsity")
    if sp:
        o = sp["overall"]
        lines += ["", "## FFN activation sparsity (final model)", "",
                  f"Share of zero FFN activations (held out): {o['sparsity']:.3f}. Loss with only "
                  f"predicted-active neurons: {sp['loss_masked']:.4f} (Δ {sp['loss_delta']:+.4f}).", "",
                  "| predictor | recall | precision | neurons loaded |", "|---|---|---|---|"]
        lines += [f"| {k} | {o[k]['recall']:.3f} | {o[k]['precision']:.3f} | {o[k]['loaded']:.3f} |"
                  for k in ("mlp", "quant", "or") if k in o]
    c = res.get("cluster_head")
    if c:
        lines += ["", f"## Clustered head (K = {c['k']})", "",
                  f"Cluster accuracy (label's cluster) {c['cluster_accuracy']:.3f}, vs the full head's "
                  f"top-1 {c['cluster_accuracy_top1']:.3f}; top-1 agreement {c['top1_agreement']:.3f}; "
                  f"head rows loaded {c['rows_loaded']:.3f}. Loss where the label is inside the "
                  f"predicted cluster: full {_f(c.get('loss_full_inside'))}, restricted "
                  f"{_f(c.get('loss_restricted_inside'))} (Δ {_f(c.get('loss_delta_inside'), '+.4f')}); "
                  f"elsewhere the restricted head gives the label probability 0."]
    return "\n".join(lines) + "\n"
