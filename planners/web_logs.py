"""Reading the MPC web agent's JSONL logs (:mod:`planners.web_agent`) and rendering an episode
for a person (``wm webagent show``).

A log holds, per episode, an ``episode_start`` record, its ``step`` records and an
``episode_end`` record; several episodes (and, after an interrupted run was resumed, an
unfinished attempt followed by a complete one) may share a file. :func:`read_episodes` returns
the last *complete* attempt of each episode id, in first-appearance order.
"""

from __future__ import annotations

from pathlib import Path

from worldmodels.envs.web.build import fixed_origin
from worldmodels.records import RecordError, iter_records

from .web_agent import tree_delta

__all__ = ["read_episodes", "finished_ids", "render_episode", "value_records"]

_REQUIRED = {"episode_start": {"episode": str, "site": str, "family": str, "seed": int,
                               "objective": str},
             "step": {"episode": str, "step": int, "observation": str, "proposals": list,
                      "kept": list, "reason": str, "next_observation": str, "valid": bool},
             "episode_end": {"episode": str, "success": bool, "steps": int, "reason": str}}


def read_episodes(path, complete_only: bool = True) -> list[dict]:
    """``[{"episode", "start", "steps": [...], "end"}]`` of the log ``path``. A record of an
    unknown ``type``, missing a field or of the wrong type raises :class:`RecordError` naming the
    file, line and field; a step or end without its start too. Unfinished attempts (no
    ``episode_end``) are dropped unless ``complete_only`` is False (then ``end`` is None)."""
    episodes: dict[str, dict] = {}
    current: dict[str, dict] = {}
    for line, rec in iter_records(path, {"type": str}):
        kind = rec["type"]
        where = f"{path}: line {line}"
        if kind not in _REQUIRED:
            raise RecordError(f"{where}: field 'type' is {kind!r}; expected one of "
                              f"{sorted(_REQUIRED)}")
        for name, t in _REQUIRED[kind].items():
            v = rec.get(name)
            if not isinstance(v, t) or (t is int and isinstance(v, bool)):
                raise RecordError(f"{where}: field {name!r} is {v!r}; expected {t.__name__}")
        ep = rec["episode"]
        if kind == "episode_start":
            current[ep] = {"episode": ep, "start": rec, "steps": [], "end": None}
            if not complete_only or ep not in episodes:  # else keep the complete one so far
                episodes[ep] = current[ep]
            continue
        if ep not in current:
            raise RecordError(f"{where}: a {kind} record of episode {ep!r} before its "
                              f"episode_start")
        if kind == "step":
            current[ep]["steps"].append(rec)
        else:
            current[ep]["end"] = rec
            episodes[ep] = current.pop(ep)
    return [e for e in episodes.values() if e["end"] is not None or not complete_only]


def finished_ids(path) -> set[str]:
    """Episode ids with a complete attempt in ``path`` (empty when the file does not exist)."""
    return {e["episode"] for e in read_episodes(path)} if Path(path).is_file() else set()


def value_records(path, agent: str = "policy") -> list[dict]:
    """Training records for the value model (``web_agent_data.VALUE_FIELDS``) from the complete
    episodes of the agent log ``path``: one per step, whose state is the step's
    ``next_observation``, labelled later by ``success_to_go`` from the step's own ``success``
    (the task check right after it) and the episode's. So a value trained on them learns the
    success-to-go *of the logged policy* from the states that policy visits, its mistakes
    included (the demonstrations of ``wm data build web`` show few of those).

    Every live origin ``http://127.0.0.1:<port>`` is written ``http://localhost:<site>``, as in
    ``wm data build web``'s records. ``episode`` is the episode's seed and ``agent`` the given
    name. A step with no parseable candidate (nothing executed) has ``current_action`` "none".
    Raises RecordError naming the file and episode for an older log whose steps lack
    ``success``, and as :func:`read_episodes` for a malformed log."""
    out = []
    for ep in read_episodes(path):
        start, end, steps = ep["start"], ep["end"], ep["steps"]
        site = start["site"]

        def fx(text: str, site=site) -> str:
            return fixed_origin(text, site)

        for st in steps:
            if not isinstance(st.get("success"), bool):
                raise RecordError(f"{path}: episode {ep['episode']!r} step {st['step']}: field "
                                  f"'success' is {st.get('success')!r}; expected bool (older logs "
                                  f"do not carry the per-step check)")
            out.append({"objective": start["objective"], "url": fx(st.get("url", "")),
                        "previous_actions": [fx(a) for a in st.get("previous_actions", [])],
                        "observation": fx(st["observation"]),
                        "current_action": fx(st["choice"]) if st.get("choice") else "none",
                        "next_state_acctree": fx(st["next_observation"]), "site": site,
                        "family": start["family"], "agent": agent, "success": st["success"],
                        "episode_success": end["success"], "episode_steps": len(steps),
                        "episode": start["seed"], "step": st["step"], "seed": start["seed"]})
    return out


def _indent(lines, prefix="      "):
    return [prefix + x for x in lines]


def render_episode(ep: dict, trees: bool = False, max_lines: int = 12) -> str:
    """A readable account of one episode of :func:`read_episodes`: objective, then per step the
    page, the proposals (count), the kept candidates with their value and predicted change, the
    choice and why, and what really changed (whether the prediction matched); then the outcome.
    ``trees``: print each observation in full; otherwise only the changes (``max_lines`` each)."""
    s = ep["start"]
    out = [f"Episode {ep['episode']}: {s['site']}/{s['family']} seed {s['seed']}",
           f"Objective: {s['objective']}", ""]
    for r in ep["steps"]:
        out.append(f"Step {r['step']}  {r.get('url', '')}")
        if trees:
            out += _indent(r["observation"].splitlines(), "  | ")
        props = ", ".join(f"{p['action']} x{p['count']}" + ("" if p["parsed"] else " (unparsed)")
                          for p in r["proposals"])
        out.append(f"  proposals: {props or '(none)'}")
        for k in r["kept"]:
            mark = "->" if k["action"] == r.get("choice") else "  "
            value = f"  value {k['value']:.3f}" if "value" in k else ""
            out.append(f"  {mark} {k['action']}  (x{k['count']}){value}")
            if "predicted" in k:
                d = tree_delta(r["observation"], k["predicted"], max_lines)
                out += _indent([f"+ {x}" for x in d["added"]] + [f"- {x}" for x in d["removed"]]
                               or ["(predicts no change)"])
        ref = r.get("reference_action")
        out.append(f"  chose: {r.get('choice')} ({r['reason']})"
                   + (f"; the script would do: {ref}" if ref else ""))
        if not r["valid"]:
            out.append(f"  INVALID: {r.get('error')}")
        d = tree_delta(r["observation"], r["next_observation"], max_lines)
        matched = r.get("prediction_matched")
        out.append("  what happened" + ("" if matched is None else
                                        f" (prediction {'matched' if matched else 'WRONG'})")
                   + (f", value of the real state {r['value_real']:.3f}"
                      if r.get("value_real") is not None else "") + ":")
        out += _indent([f"+ {x}" for x in d["added"]] + [f"- {x}" for x in d["removed"]]
                       or ["(no change)"])
        out.append("")
    e = ep["end"]
    if e is None:
        out.append("(unfinished: no episode_end record)")
    else:
        out.append(f"End: {'SUCCESS' if e['success'] else 'failure'} after {e['steps']} steps "
                   f"({e['reason']})" + (f", answer {e['answer']!r}" if e.get("answer") else ""))
    return "\n".join(out) + "\n"
