"""`wm webagent`: the MPC web agent on the local sites (policy proposes, world model predicts,
value chooses; ``planners.web_agent``).

    wm webagent run --site shop --family cheapest --policy scripted:0.5 --world-model oracle \\
        --value oracle --episodes 2 --log runs/webagent/shop.jsonl
    wm webagent run --policy random --world-model none --mode policy_sample   # the policy alone
    wm webagent show runs/webagent/shop.jsonl                 # every episode, step by step
    wm webagent report alone=runs/a/logs/alone.jsonl mpc=runs/b/logs/mpc.jsonl --out runs/rep
    wm webagent eval --set 'settings=["alone=random,none,none,policy_sample","oracle=random,oracle,oracle"]' \\
        --episodes 30 --out runs/webagent_eval                # results.json + report.md; resumable

Components: policy ``random`` | ``scripted[:noise]`` | a trained policy dir; world model
``oracle`` | ``none`` | a web world model dir; value ``oracle`` | ``none`` | a value model dir.
See docs/web_agent.md.
"""

from __future__ import annotations

from pathlib import Path

import typer

from worldmodels.commands._common import build_config, config_epilog

app = typer.Typer(help="MPC web agent over a web-DOM world model (run, show, eval, report)",
                  no_args_is_help=True)


def _epilog(name: str) -> str:
    from planners.web_eval import WebAgentEvalConfig, WebAgentRunConfig

    return config_epilog(WebAgentRunConfig if name == "run" else WebAgentEvalConfig)


def _fail(e: Exception):
    typer.echo(f"error: {e}", err=True)
    raise typer.Exit(code=2) from e


@app.command("run", epilog=_epilog("run"))
def run(
    site: str = typer.Option(None, help="local site: shop, admin, forum"),
    family: str = typer.Option(None, help="task family, e.g. cheapest, order_status, upvote"),
    seed: int = typer.Option(None, help="first episode seed"),
    episodes: int = typer.Option(None, help="episodes (seeds seed..seed+episodes-1)"),
    policy: str = typer.Option(None, help="random | scripted[:noise] | a policy dir"),
    world_model: str = typer.Option(None, "--world-model", help="oracle | none | a web world "
                                    "model dir (none: the policy alone, mode policy_vote)"),
    value: str = typer.Option(None, help="oracle | none | a value model dir"),
    steps: int = typer.Option(None, help="max actions per episode (agent.max_steps)"),
    candidates: int = typer.Option(None, help="policy samples per step K (agent.candidates)"),
    branching: int = typer.Option(None, help="candidates kept and scored B (agent.branching)"),
    mode: str = typer.Option(None, help="mpc | policy_vote | policy_sample (agent.mode)"),
    stop_rule: str = typer.Option(None, "--stop-rule", help="parsed | substring (compat)"),
    log: str = typer.Option(None, help="JSONL log (appended; finished episodes are skipped)"),
    config: Path = typer.Option(None, help="YAML with WebAgentRunConfig fields"),
    set_: list[str] = typer.Option(None, "--set", help="dotted override, e.g. agent.seed=3"),
) -> None:
    """Episodes of one task with the chosen components, logged to JSONL."""
    from planners.web_eval import WebAgentRunConfig, parse_setting, run_episodes

    if world_model == "none" and mode is None:
        mode = "policy_vote"
    flags = {"site": site, "family": family, "seed": seed, "episodes": episodes,
             "policy": policy, "world_model": world_model, "value": value,
             "agent.max_steps": steps, "agent.candidates": candidates,
             "agent.branching": branching, "agent.mode": mode, "agent.stop_rule": stop_rule,
             "log": log}
    cfg = build_config(WebAgentRunConfig, config=config, flags=flags, sets=set_)
    try:
        s = parse_setting(f"run={cfg.policy},{cfg.world_model},{cfg.value},{cfg.agent.mode}")
        jobs = [(cfg.site, cfg.family, cfg.seed + i) for i in range(cfg.episodes)]
        ends = run_episodes(s, jobs, cfg.agent, cfg.log, reference=cfg.reference,
                            device=cfg.device, progress=_progress)
    except (ValueError, KeyError, FileNotFoundError) as e:
        _fail(e)
    if not ends:
        typer.echo(f"every episode is already in {cfg.log}")
    else:
        k = sum(e["success"] for e in ends)
        typer.echo(f"{k}/{len(ends)} episodes succeeded; log: {cfg.log}")


def _progress(name: str, end: dict) -> None:
    typer.echo(f"[{name}] {end['episode']}: {'success' if end['success'] else 'failure'} "
               f"after {end['steps']} steps ({end['reason']})")


@app.command("show")
def show(
    log: Path = typer.Argument(..., help="a JSONL log of wm webagent run/eval"),
    episode: str = typer.Option(None, help="only this episode id (site/family/seed)"),
    trees: bool = typer.Option(False, help="print every observation in full"),
    max_lines: int = typer.Option(12, help="changed lines shown per tree change"),
) -> None:
    """Render logged episodes step by step: proposals, kept candidates with values and
    predicted changes, the choice, and what really changed."""
    from planners.web_logs import read_episodes, render_episode
    from worldmodels.records import RecordError

    try:
        eps = read_episodes(log, complete_only=False)
    except RecordError as e:
        _fail(e)
    if episode is not None:
        eps = [e for e in eps if e["episode"] == episode]
        if not eps:
            _fail(ValueError(f"{log}: no episode {episode!r}"))
    for ep in eps:
        typer.echo(render_episode(ep, trees=trees, max_lines=max_lines))


@app.command("eval", epilog=_epilog("eval"))
def eval_(
    episodes: int = typer.Option(None, help="seeds per task"),
    seed: int = typer.Option(None, help="first seed"),
    setting: list[str] = typer.Option(None, help="name=policy,world_model,value[,mode] "
                                      "(repeatable; replaces the default settings)"),
    compare: list[str] = typer.Option(None, help="a:b setting pair (repeatable)"),
    out: str = typer.Option(None, help="output directory (logs/, results.json, report.md)"),
    config: Path = typer.Option(None, help="YAML with WebAgentEvalConfig fields"),
    set_: list[str] = typer.Option(None, "--set", help="dotted override, e.g. "
                                   "'tasks=[shop/cheapest]'"),
) -> None:
    """Settings x seeded episodes: success per site and overall (Wilson 95%), paired McNemar
    and bootstrap comparisons, failure analysis and cost per step. Resumable."""
    from planners.web_eval import WebAgentEvalConfig, run_eval

    flags = {"episodes": episodes, "seed": seed, "out": out,
             "settings": _yaml_list(setting), "compare": _yaml_list(compare)}
    cfg = build_config(WebAgentEvalConfig, config=config, flags=flags, sets=set_)
    try:
        _, md = run_eval(cfg, progress=_progress)
    except (ValueError, KeyError, FileNotFoundError) as e:
        _fail(e)
    typer.echo(md)
    typer.echo(f"written: {Path(cfg.out) / 'results.json'}, {Path(cfg.out) / 'report.md'}")


@app.command("report")
def report(
    log: list[str] = typer.Argument(..., help="name=path/to/log.jsonl (repeatable)"),
    compare: list[str] = typer.Option(None, help="a:b setting pair (repeatable; default: all vs the first)"),
    out: str = typer.Option(..., help="output directory (results.json, report.md)"),
) -> None:
    """Summarise existing logs without running anything (settings evaluated separately or with
    different episode counts): success with Wilson 95%, paired comparisons on the episodes both
    logs hold, failure analysis and cost per step."""
    from planners.web_eval import report_logs
    from worldmodels.records import RecordError

    logs = {}
    for item in log:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            _fail(ValueError(f"log {item!r}: expected name=path/to/log.jsonl"))
        logs[name] = path
    try:
        _, md = report_logs(logs, list(compare or []), out)
    except (ValueError, FileNotFoundError, RecordError) as e:
        _fail(e)
    typer.echo(md)
    typer.echo(f"written: {Path(out) / 'results.json'}, {Path(out) / 'report.md'}")


@app.command("value-data")
def value_data(
    log: list[Path] = typer.Argument(..., help="JSONL logs of wm webagent run/eval whose steps carry 'success'"),
    out: Path = typer.Option(..., help="output .json array of value training records"),
    add: list[Path] = typer.Option(None, help="value training records to put first (e.g. wm data "
                                   "build web's train.json; checked for the value fields; repeatable)"),
    agent: str = typer.Option("policy", help="the records' agent name"),
) -> None:
    """Value-model training records from logged episodes: one per step, the state after it,
    labelled (at training time) by the logged policy's success-to-go. Train on the result with
    ``wm pretrain web-value --set task.train=OUT``."""
    import json

    from planners.web_logs import value_records
    from worldmodels.atomic import atomic_write
    from worldmodels.records import RecordError, iter_records
    from worldmodels.tasks.web_agent_data import VALUE_FIELDS, episode_key

    try:
        records, seen = [], {}
        for p in add or []:
            for i, r in iter_records(p, VALUE_FIELDS):
                records.append(r)
                seen.setdefault(episode_key(r), f"{p}: record {i}")
        n_added = len(records)
        for p in log:
            rows = value_records(p, agent=agent)
            for k in dict.fromkeys(map(episode_key, rows)):
                if k in seen:
                    raise RecordError(
                        f"{p}: episode {k[0]}/{k[1]} seed {k[3]} is also in {seen[k]}; the value "
                        f"labels group steps by (site, family, episode, seed), so the two would "
                        f"merge into one episode. Pass logs of distinct seeds")
                seen[k] = str(p)
            records += rows
    except (RecordError, FileNotFoundError) as e:
        _fail(e)
    atomic_write(out, lambda f: json.dump(records, f), text=True)
    from_logs = records[n_added:]
    eps = {(r["site"], r["family"], r["episode"]) for r in from_logs}
    won = {(r["site"], r["family"], r["episode"]) for r in from_logs if r["episode_success"]}
    typer.echo(f"{out}: {len(records)} records ({n_added} added, {len(from_logs)} steps of "
               f"{len(eps)} logged episodes, {len(won)} successful)")


@app.command("value-check")
def value_check(
    log: list[Path] = typer.Argument(..., help="JSONL logs of wm webagent run/eval in mpc mode"),
    value: str = typer.Option(..., help="a value model dir or pkg.module:factory (not the "
                              "oracle: it needs the live site)"),
    out: Path = typer.Option(None, help="also write the counts as JSON here"),
    world_model: str = typer.Option(None, "--world-model", help="a web world model dir or "
                                    "pkg.module:factory that predicts the kept candidates again "
                                    "(default: the logged predictions)"),
    max_new_tokens: int = typer.Option(None, help="answer token budget of a --world-model dir "
                                       "(default: its recipe's task.max_new_tokens)"),
    seed: int = typer.Option(0, help="sampling seed of a --world-model dir"),
    device: str = typer.Option("cpu", help="torch device of the models"),
) -> None:
    """Screen a value offline on logged MPC steps, no browser: on each scored step whose kept
    candidates include the script's action, the value scores the logged predicted states again,
    and we count how often each rule picks the script's action: the policy's vote (most frequent
    kept), the value's argmax (RLVR-World) and the weighted vote (count x value). A value that
    makes planning pay must beat the vote here. With --world-model the candidates are predicted
    again (e.g. with a larger --max-new-tokens) before the value scores them. See
    docs/web_agent.md."""
    import json

    from planners.web_components import load_component
    from planners.web_logs import read_episodes
    from planners.web_stats import RULES, value_agreement
    from worldmodels.atomic import atomic_write
    from worldmodels.records import RecordError

    if max_new_tokens is not None and not (world_model and Path(world_model).is_dir()):
        _fail(ValueError("--max-new-tokens needs --world-model, a web world model dir"))
    if value.partition(":")[0] == "oracle":
        _fail(ValueError(f"--value {value!r}: the oracle values score a candidate by executing "
                         "it on the live site, which a log cannot replay; pass a value model dir"))
    try:
        v = load_component("value", value, device=device)
        wm = None
        if world_model in ("oracle", "none"):
            raise ValueError(f"--world-model {world_model!r}: expected a web world model dir "
                             "or pkg.module:factory")
        if world_model is not None:
            wm = load_component("world_model", world_model, device=device,
                                options={"seed": seed, "max_new_tokens": max_new_tokens})
        results = {}
        for p in log:
            try:
                results[str(p)] = value_agreement(read_episodes(p), v, wm)
            except ValueError as e:
                raise ValueError(f"{p}: {e}") from e
    except (ValueError, FileNotFoundError, RecordError) as e:
        _fail(e)
    typer.echo("| log | steps | " + " | ".join(RULES) + " |")
    typer.echo("|---|---|" + "---|" * len(RULES))
    for p, r in results.items():
        typer.echo(f"| {p} | {r['steps']} | " + " | ".join(str(r["hits"][k]) for k in RULES) + " |")
    for p, r in results.items():
        if r["steps"] == 0:
            typer.echo(f"note: {p} has no scored step whose kept candidates include the script's "
                       f"action (skipped: {r['skipped']}); a log of mode mpc with "
                       "reference=scripted is needed", err=True)
    if out is not None:
        meta = {"value": value, "world_model": world_model, "max_new_tokens": max_new_tokens,
                "seed": seed}
        atomic_write(out, lambda f: json.dump({**meta, "logs": results}, f, indent=1), text=True)
        typer.echo(f"written: {out}")


def _yaml_list(items: list[str] | None) -> str | None:
    import json

    return json.dumps(list(items)) if items else None
