"""Running the MPC web agent over seeded episodes (``wm webagent run|eval``) and reporting.

    cfg = WebAgentEvalConfig(settings=["alone=random,none,none,policy_sample",
                                       "oracle=random,oracle,oracle"], episodes=30)
    results, markdown = run_eval(cfg)      # <out>/logs/<setting>.jsonl, results.json, report.md

A *setting* is ``name=policy,world_model,value[,mode]`` (component specs of
:func:`planners.web_components.load_component`; ``none`` for no world model / value; ``mode``
as :class:`planners.web_agent.AgentConfig`, default ``mpc``, or ``policy_vote`` when the world
model is ``none``). Every setting runs the same episodes: each task (``site/family``) with seeds
``seed .. seed+episodes-1``, so settings are compared pairwise on the same episodes. Runs
resume: an episode with a complete record in its setting's log is skipped, and a setting whose
recorded spec (``<out>/settings.json``) differs is an error naming it.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .web_agent import MODES, AgentConfig, JsonlLog, run_agent_episode
from .web_components import OracleWorldModel, ScriptedPolicy, load_component
from .web_logs import read_episodes
from .web_stats import CATEGORIES, failure_table, mcnemar_exact, paired_bootstrap, wilson

__all__ = ["Setting", "parse_setting", "WebAgentRunConfig", "WebAgentEvalConfig",
           "run_episodes", "run_eval", "summarize", "report_markdown"]


@dataclass(frozen=True)
class Setting:
    """A named agent setting: component specs and the agent mode."""

    name: str
    policy: str
    world_model: str
    value: str
    mode: str


def parse_setting(text: str) -> Setting:
    """``name=policy,world_model,value[,mode]`` -> :class:`Setting`; ValueError naming the
    problem and the expected form."""
    form = "expected 'name=policy,world_model,value[,mode]'"
    name, eq, rest = str(text).partition("=")
    parts = [p.strip() for p in rest.split(",")]
    if not eq or not name.strip() or len(parts) not in (3, 4) or not all(parts):
        raise ValueError(f"setting {text!r}: {form}")
    mode = parts[3] if len(parts) == 4 else ("policy_vote" if parts[1] == "none" else "mpc")
    if mode not in MODES:
        raise ValueError(f"setting {text!r}: mode {mode!r} is not one of {MODES}")
    if mode == "mpc" and "none" in parts[1:3]:
        raise ValueError(f"setting {text!r}: mode mpc needs a world model and a value")
    return Setting(name.strip(), parts[0], parts[1], parts[2], mode)


def _task(text: str) -> tuple[str, str]:
    site, slash, family = str(text).partition("/")
    if not slash or not site or not family:
        raise ValueError(f"task {text!r}: expected 'site/family', e.g. shop/cheapest")
    return site, family


@dataclass
class WebAgentRunConfig:
    """``wm webagent run``: episodes of one task with one setting.

    site: local site (shop, admin, forum).
    family: its task family (e.g. cheapest).
    seed: first episode seed.
    episodes: how many episodes: seeds ``seed .. seed+episodes-1``.
    policy: random | scripted[:noise] | a policy directory | pkg.module:factory.
    world_model: oracle | none | a web world model directory | pkg.module:factory.
    value: oracle | none | a value model directory | pkg.module:factory.
    reference: scripted (log the scripted agent's action per step, for the failure analysis)
        or none.
    agent: the agent's settings (:class:`planners.web_agent.AgentConfig`).
    log: the JSONL log (appended; its finished episodes are skipped; one setting per log).
    device: torch device of learned components (cpu, cuda, auto).
    """

    site: str = "shop"
    family: str = "cheapest"
    seed: int = 0
    episodes: int = 1
    policy: str = "random"
    world_model: str = "oracle"
    value: str = "oracle"
    reference: str = "scripted"
    agent: AgentConfig = field(default_factory=AgentConfig)
    log: str = "runs/webagent/episodes.jsonl"
    device: str = "cpu"

    def __post_init__(self):
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        if self.reference not in ("scripted", "none"):
            raise ValueError(f"reference must be scripted or none, got {self.reference!r}")
        if self.agent.mode == "mpc" and "none" in (self.world_model, self.value):
            raise ValueError("agent.mode mpc needs a world model and a value; use "
                             "agent.mode=policy_vote or policy_sample for the policy alone")


@dataclass
class WebAgentEvalConfig:
    """``wm webagent eval``: several settings on the same seeded episodes.

    tasks: ``site/family`` tasks to run.
    episodes: seeds per task.
    seed: first seed.
    settings: ``name=policy,world_model,value[,mode]`` (see the module doc).
    compare: ``a:b`` pairs of setting names compared on the same episodes (empty: every
        setting against the first).
    reference: scripted or none (as for ``run``).
    agent: the agent's settings (its mode is the setting's).
    out: output directory (logs/, settings.json, results.json, report.md).
    device: torch device of learned components.
    """

    tasks: list[str] = field(default_factory=lambda: ["shop/cheapest", "admin/order_status",
                                                      "forum/upvote"])
    episodes: int = 30
    seed: int = 1000
    settings: list[str] = field(default_factory=lambda: [
        "policy_alone=random,none,none,policy_sample", "oracle=random,oracle,oracle"])
    compare: list[str] = field(default_factory=list)
    reference: str = "scripted"
    agent: AgentConfig = field(default_factory=AgentConfig)
    out: str = "runs/webagent_eval"
    device: str = "cpu"

    def __post_init__(self):
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        for t in self.tasks:
            _task(t)
        parsed = [parse_setting(s) for s in self.settings]
        names = [s.name for s in parsed]
        if not parsed or len(set(names)) != len(names):
            raise ValueError(f"settings need unique names, got {names}")
        for pair in self.compare:
            a, colon, b = pair.partition(":")
            if not colon or a not in names or b not in names:
                raise ValueError(f"compare {pair!r}: expected 'a:b' with a, b among {names}")
        if self.reference not in ("scripted", "none"):
            raise ValueError(f"reference must be scripted or none, got {self.reference!r}")


class _Components:
    """A setting's policy, world model and value (one oracle env shared), closed at the end."""

    def __init__(self, s: Setting, device: str):
        uses = "oracle" in (s.world_model, s.value.partition(":")[0])
        self.oracle = OracleWorldModel() if uses else None
        try:  # a component that fails to load (a missing dir) must not leave the oracle open
            self.policy = load_component("policy", s.policy, device=device)
            self.world_model = load_component("world_model", s.world_model, self.oracle, device)
            self.value = (None if s.value == "none"
                          else load_component("value", s.value, self.oracle, device))
        except BaseException:
            self.close()
            raise

    def close(self):
        if self.oracle is not None:
            self.oracle.close()


def _reference(kind: str, site: str, family: str):
    from worldmodels.envs.web.agents import SCRIPTS

    return ScriptedPolicy() if kind == "scripted" and (site, family) in SCRIPTS else None


def run_episodes(setting: Setting, jobs: list[tuple[str, str, int]], agent: AgentConfig,
                 log_path, env=None, reference: str = "scripted", device: str = "cpu",
                 progress=None) -> list[dict]:
    """Run ``jobs`` (site, family, seed) with ``setting``, appending to ``log_path``; episodes
    already complete there are skipped (a log holding episodes of another setting is a
    ValueError naming both). ``env``: a ``WebEnv`` (one is opened when None).
    Returns the ``episode_end`` records of the episodes run now."""
    spec = asdict(setting)
    done = {}
    if Path(log_path).is_file():
        done = {e["episode"]: e["start"].get("setting") for e in read_episodes(log_path)}
    for ep, other in done.items():
        if other != spec:
            raise ValueError(f"{log_path} holds episode {ep} run with setting {other}, not "
                             f"{spec}; use another log")
    todo = [j for j in jobs if f"{j[0]}/{j[1]}/{j[2]}" not in done]
    if not todo:
        return []
    cfg = AgentConfig(**{**asdict(agent), "mode": setting.mode})
    comps = _Components(setting, device)  # before the browser: a bad component fails fast
    own = env is None
    ends = []
    try:
        if own:
            from worldmodels.envs.web.browser import WebEnv
            env = WebEnv()
        with JsonlLog(log_path) as log:
            for site, family, seed in todo:
                ends.append(run_agent_episode(env, comps.policy, comps.world_model, comps.value,
                                              site, family, seed, cfg, log,
                                              _reference(reference, site, family),
                                              meta={"setting": spec}))
                if progress:
                    progress(setting.name, ends[-1])
    finally:
        comps.close()
        if own and env is not None:
            env.close()
    return ends


def run_eval(cfg: WebAgentEvalConfig, env=None, progress=None) -> tuple[dict, str]:
    """Every setting on every (task, seed); then :func:`summarize` of the logs, written as
    ``results.json`` and ``report.md`` under ``cfg.out``. Returns both."""
    out = Path(cfg.out)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    settings = [parse_setting(s) for s in cfg.settings]
    recorded_path = out / "settings.json"
    recorded = json.loads(recorded_path.read_text()) if recorded_path.is_file() else {}
    for s in settings:
        if s.name in recorded and recorded[s.name] != asdict(s):
            raise ValueError(f"{recorded_path}: setting {s.name!r} was run as {recorded[s.name]}, "
                             f"now {asdict(s)}; use another name or --out")
        recorded[s.name] = asdict(s)
    recorded_path.write_text(json.dumps(recorded, indent=1) + "\n")
    jobs = [(*_task(t), cfg.seed + i) for t in cfg.tasks for i in range(cfg.episodes)]
    ids = {f"{a}/{b}/{c}" for a, b, c in jobs}
    wall = {}
    for s in settings:
        t0 = time.perf_counter()
        run_episodes(s, jobs, cfg.agent, out / "logs" / f"{s.name}.jsonl", env, cfg.reference,
                     cfg.device, progress)
        wall[s.name] = time.perf_counter() - t0
    logs = {s.name: [e for e in read_episodes(out / "logs" / f"{s.name}.jsonl")
                     if e["episode"] in ids] for s in settings}
    pairs = [tuple(p.split(":")) for p in cfg.compare] or [
        (settings[0].name, s.name) for s in settings[1:]]
    results = summarize(logs, pairs)
    for name, w in wall.items():
        results["settings"][name]["spec"] = recorded[name]
        results["settings"][name]["wall_s_this_run"] = round(w, 1)
    md = report_markdown(results)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "report.md").write_text(md)
    return results, md


def report_logs(logs: dict[str, str | Path], compare: list[str], out: str | Path,
                episodes: set[str] | None = None) -> tuple[dict, str]:
    """:func:`summarize` of existing logs (setting name -> JSONL path; nothing is run), e.g.
    settings evaluated into separate directories or with different episode counts. ``compare``:
    ``a:b`` pairs (empty: every setting against the first); ``episodes``: keep only these ids.
    Writes ``results.json`` and ``report.md`` under ``out``. FileNotFoundError / RecordError
    name the log."""
    eps = {}
    for name, path in logs.items():
        if not Path(path).is_file():
            raise FileNotFoundError(f"log of setting {name!r} not found: {path}")
        eps[name] = [e for e in read_episodes(path) if episodes is None or e["episode"] in episodes]
    for pair in compare:
        if len(pair.split(":")) != 2 or any(n not in eps for n in pair.split(":")):
            raise ValueError(f"compare {pair!r}: expected a:b with a and b among {sorted(eps)}")
    names = list(eps)
    pairs = [tuple(p.split(":")) for p in compare] or [(names[0], n) for n in names[1:]]
    results = summarize(eps, pairs)
    md = report_markdown(results)
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (Path(out) / "report.md").write_text(md)
    return results, md


def _rate(outcomes: list[bool]) -> dict:
    k, n = sum(outcomes), len(outcomes)
    lo, hi = wilson(k, n)
    return {"n": n, "successes": k, "rate": k / n if n else 0.0, "ci95": [lo, hi]}


def _cost(episodes: list[dict]) -> dict:
    c: Counter = Counter()
    steps = 0
    for ep in episodes:
        for r in ep["steps"]:
            steps += 1
            c.update(r.get("timing") or {})
            c["policy_samples"] += sum(p["count"] for p in r["proposals"])
            scored = sum("predicted" in k for k in r["kept"])
            c["world_model_predictions"] += scored
            c["value_states"] += scored + (r.get("value_real") is not None)
            info = r.get("info") or {}
            c["browser_steps"] += (r.get("choice") is not None) + sum(
                (info.get(k) or {}).get("browser_steps", 0) for k in ("world_model", "value"))
    per_step = {k: round(v / steps, 4) for k, v in sorted(c.items())} if steps else {}
    return {"steps": steps, "steps_per_episode": round(steps / max(len(episodes), 1), 2),
            "per_step": per_step}


def summarize(logs: dict[str, list[dict]], pairs: list[tuple[str, str]]) -> dict:
    """Success rates (overall, per site, per task) with Wilson 95% intervals, failure tables,
    cost per step, and paired comparisons (McNemar exact, paired bootstrap of the difference,
    on the episodes both settings finished) of ``logs`` (setting -> read_episodes output)."""
    res: dict = {"settings": {}, "comparisons": []}
    for name, eps in logs.items():
        by_site: dict[str, list[bool]] = {}
        by_task: dict[str, list[bool]] = {}
        for e in eps:
            s = e["start"]
            by_site.setdefault(s["site"], []).append(e["end"]["success"])
            by_task.setdefault(f"{s['site']}/{s['family']}", []).append(e["end"]["success"])
        res["settings"][name] = {
            "overall": _rate([e["end"]["success"] for e in eps]),
            "per_site": {k: _rate(v) for k, v in sorted(by_site.items())},
            "per_task": {k: _rate(v) for k, v in sorted(by_task.items())},
            "failures": failure_table(eps), "cost": _cost(eps)}
    for a, b in pairs:
        ea = {e["episode"]: e["end"]["success"] for e in logs[a]}
        eb = {e["episode"]: e["end"]["success"] for e in logs[b]}
        common = sorted(set(ea) & set(eb))
        if not common:
            res["comparisons"].append({"a": a, "b": b, "n": 0})
            continue
        xa, xb = [ea[i] for i in common], [eb[i] for i in common]
        res["comparisons"].append({"a": a, "b": b, **mcnemar_exact(xa, xb),
                                   "rate_a": sum(xa) / len(xa), "rate_b": sum(xb) / len(xb),
                                   "diff_b_minus_a": paired_bootstrap(xa, xb)})
    return res


def _pct(r: dict) -> str:
    return f"{100 * r['rate']:.1f}% [{100 * r['ci95'][0]:.1f}, {100 * r['ci95'][1]:.1f}] (n={r['n']})"


def report_markdown(results: dict) -> str:
    """The markdown report of :func:`summarize`'s output."""
    st = results["settings"]
    sites = sorted({s for v in st.values() for s in v["per_site"]})
    lines = ["# MPC web agent evaluation", "",
             "Success rate with Wilson 95% interval.", "",
             "| setting | overall | " + " | ".join(sites) + " |",
             "|---|---|" + "---|" * len(sites)]
    for name, v in st.items():
        lines.append(f"| {name} | {_pct(v['overall'])} | " + " | ".join(
            _pct(v["per_site"][s]) if s in v["per_site"] else "-" for s in sites) + " |")
    lines += ["", "## Paired comparisons (same episodes)", "",
              "| a | b | n | rate a | rate b | b-a [95% paired bootstrap] | a only | b only | "
              "McNemar exact p |", "|---|---|---|---|---|---|---|---|---|"]
    for c in results["comparisons"]:
        if not c["n"]:
            lines.append(f"| {c['a']} | {c['b']} | 0 | - | - | - | - | - | - |")
            continue
        d = c["diff_b_minus_a"]
        lines.append(f"| {c['a']} | {c['b']} | {c['n']} | {c['rate_a']:.3f} | {c['rate_b']:.3f} "
                     f"| {d['diff']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}] | {c['a_only']} | "
                     f"{c['b_only']} | {c['p_value']:.4g} |")
    lines += ["", "## Failure analysis (failed episodes, at the decisive step; see "
              "docs/web_agent.md)", "",
              "| setting | failures | " + " | ".join(CATEGORIES) + " | not proposed | oracle: "
              "better kept |", "|---|---|" + "---|" * (len(CATEGORIES) + 2)]
    for name, v in st.items():
        f = v["failures"]
        lines.append(f"| {name} | {f['failures']} | " + " | ".join(str(f[c]) for c in CATEGORIES)
                     + f" | {f.get('not_proposed', 0)} | {f.get('oracle_better_candidate', 0)} |")
    keys = ["policy_samples", "world_model_predictions", "value_states", "browser_steps",
            "policy_s", "world_model_s", "value_s", "value_real_s", "env_s"]
    lines += ["", "## Cost per step (means over steps)", "",
              "| setting | steps/episode | " + " | ".join(keys) + " |",
              "|---|---|" + "---|" * len(keys)]
    for name, v in st.items():
        p = v["cost"]["per_step"]
        lines.append(f"| {name} | {v['cost']['steps_per_episode']} | "
                     + " | ".join(f"{p.get(k, 0):g}" for k in keys) + " |")
    return "\n".join(lines) + "\n"
