"""The MPC web agent's learned components (``planners.web_components`` interfaces):

    policy = LMPolicy("runs/web_policy")            # wm pretrain web-policy output
    policy.propose(state, n=20, rng=random.Random(0))           # 20 sampled action strings
    value = LearnedValue("runs/web_value")          # wm pretrain web-value output
    value.values(objective, [state, ...])           # [0, 1] each: one forward pass per batch
    judge = LikertJudge("models/some_local_lm", samples=20)   # RLVR-World's LM judge (optional)

``LMPolicy``: the ``n`` samples of one state are one batched rollout (the prompt prefilled once,
``group_size`` n), temperature 1.0 and top-p 0.95 by default (RLVR-World's policy settings,
reference ``language.md`` §1.6), seeded from the caller's ``rng`` so the same seed gives the same
proposals. ``LearnedValue``: the expectation of the digit under the value model's softmax over the
ten digit tokens, / 9 (``tasks.web_value``). ``LikertJudge``: a Likert prompt (a 1-5 score, see
:data:`LIKERT_PROMPT`) sampled ``samples`` times; each answer's ``[Score]: N`` parsed with
RLVR-World's regex ``\\[Score\\]\\:\\s*(\\d+)`` (out of 1..5 or unparseable: 0), averaged, / 5.

The policy and value models were trained on ``wm data build web`` records, whose URLs carry the
fixed origin ``http://localhost:<site>``: by default they see a live state that way and the
policy's actions get the live origin back (``fixed_origin=False``: as they are).
A prompt longer than the model's window loses the tree's last lines (never the objective);
malformed model output never raises (the loop counts unparseable proposals; a judge's bad answer
scores 0). Each component sets ``last_info`` (JSON-able) after a call; the loop logs it.
"""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

import torch

from worldmodels.envs.web.build import fixed_origin
from worldmodels.world_model import WorldModel

__all__ = ["LMPolicy", "LearnedValue", "LikertJudge", "LIKERT_PROMPT", "likert_score", "to_live"]

SCORE = re.compile(r"\[Score\]\:\s*(\d+)")
LIVE_ORIGIN = re.compile(r"http://127\.0\.0\.1:\d+")


def _state_dict(state, objective: str | None = None, fixed: bool = True) -> dict:
    """The state as the models' training records show it: with ``fixed``, every live origin
    ``http://127.0.0.1:<port>`` written ``http://localhost:<site>`` (``wm data build web``'s
    ``fixed_origin``)."""
    site = getattr(state, "site", "") or ""

    def fx(text: str) -> str:
        return fixed_origin(text, site) if fixed and site else text

    return {"objective": objective if objective is not None else state.objective, "url": fx(state.url),
            "observation": fx(state.observation), "previous_actions": [fx(a) for a in state.previous_actions],
            "site": site, "family": getattr(state, "family", "")}


def to_live(action: str, state) -> str:
    """``action`` with the fixed origin ``http://localhost:<site>`` written as the state's live
    origin (the first ``http://127.0.0.1:<port>`` of its URL or tree; unchanged when none)."""
    m = LIVE_ORIGIN.search(state.url) or LIVE_ORIGIN.search(state.observation)
    site = getattr(state, "site", "") or ""
    return action.replace(f"http://localhost:{site}", m.group(0)) if m and site else action


def _load(model_dir, kind: str, device: str) -> WorldModel:
    wm = WorldModel.from_pretrained(model_dir, device=device)
    if wm.meta.get("kind") != kind:
        raise ValueError(f"{model_dir}: a {kind} model is needed (wm pretrain {kind.replace('_', '-')}), "
                         f"got kind {wm.meta.get('kind')!r}")
    task = wm.task
    task.on_overflow = "reduce"  # a live page never stops the agent: its tree is cut to fit
    if task.max_prompt_tokens is None:
        window = getattr(wm.model.config, "max_position_embeddings", None)
        if window:
            task.max_prompt_tokens = max(1, int(window) - task.max_new_tokens)
    return wm


class LMPolicy:
    """A behaviour-cloned policy directory (``wm pretrain web-policy``) as a ``Policy``.

    model_dir: the policy's directory. temperature (> 0) / top_p (None: no truncation): sampling.
    device: torch device. fixed_origin: the model sees live origins written as the training
    records' ``http://localhost:<site>`` and its actions get the live origin back (``to_live``);
    false: states and actions as they are. ``last_info``: ``{"n", "parsed", "policy_s"}``.
    Raises ValueError for another kind of directory or temperature <= 0.
    """

    def __init__(self, model_dir, temperature: float = 1.0, top_p: float | None = 0.95, device: str = "cpu",
                 fixed_origin: bool = True):
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.wm = _load(model_dir, "web_policy", device)
        self.temperature, self.top_p, self.fixed_origin = float(temperature), top_p, bool(fixed_origin)
        self.last_info: dict = {}

    def propose(self, state, n: int, rng: random.Random) -> list[str]:
        """``n`` sampled action strings for ``state`` (an ``AgentState``), one rollout."""
        if n < 1:
            return []
        t0 = time.perf_counter()
        task = self.wm.task
        batch, req = task.predict_request([_state_dict(state, fixed=self.fixed_origin)], None, n_samples=n)
        req.group_size = n  # one prompt, n samples: prefilled once
        gen = torch.Generator(device=self.wm.device).manual_seed(rng.getrandbits(63))
        out = self.wm.generate(req, temperature=self.temperature, top_p=self.top_p, generator=gen)
        pred = task.decode(batch, out)
        self.last_info = {"n": n, "parsed": sum(v is not None for v in pred["verb"]),
                          "policy_s": round(time.perf_counter() - t0, 3)}
        return [to_live(a, state) if self.fixed_origin else a for a in pred["text"]]


class LearnedValue:
    """A value-model directory (``wm pretrain web-value``) as a ``ValueFunction``: per state the
    expectation of the digit under the model's softmax over the ten digit tokens, / 9, with the
    given objective; one forward pass per ``batch_size`` states, no sampling. ``fixed_origin``:
    live origins written as the training records' ``http://localhost:<site>`` (as LMPolicy).
    ``last_info``: ``{"states", "value_s"}``. Raises ValueError for another kind of directory."""

    def __init__(self, model_dir, device: str = "cpu", batch_size: int = 16, fixed_origin: bool = True):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.wm = _load(model_dir, "web_value", device)
        self.batch_size, self.fixed_origin = batch_size, bool(fixed_origin)
        self.last_info: dict = {}

    def values(self, objective: str, states: list) -> list[float]:
        t0 = time.perf_counter()
        out: list[float] = []
        for i in range(0, len(states), self.batch_size):
            chunk = [_state_dict(s, objective, self.fixed_origin) for s in states[i : i + self.batch_size]]
            batch, _ = self.wm.task.predict_request(chunk, None, n_samples=1)
            out += [float(v) for v in self.wm.task.expected_values(self.wm.model, batch)]
        self.last_info = {"states": len(states), "value_s": round(time.perf_counter() - t0, 3)}
        return out


LIKERT_PROMPT = """You are an expert in evaluating the performance of a web navigation agent. The agent is designed to help a human user navigate a website to complete a task. Given the user's intent, the agent's action history, and the current state of the webpage, your goal is to decide whether the agent's execution is successful or how close it is to success.
There are three types of tasks:
1. Information seeking: the user wants to obtain certain information from the webpage, such as the information of a product, reviews, a map route. The agent's answer in its last stop action must contain that information.
2. Site navigation: the user wants to navigate to a specific page. The current page must be that page.
3. Content modification: the user wants to modify the content of a webpage or its configuration. The current page must show the modification.
4. A combination of the above.
Watch out for two pitfalls: an action history that looks right does not prove that the page reached the goal, and a page that mentions the goal's words does not prove that the task was done.
Rate the current state on a scale of 1 to 5: 1 = the task is not started or far off, 3 = about half way, 5 = the task is complete.
Answer in this format:
[Rationale]: <your reasoning>
[Score]: <1-5>

User intent: {objective}
Action history:
{history}
Current URL: {url}
Current page (accessibility tree):
{observation}
"""


def likert_score(text) -> int:
    """The first ``[Score]: N`` of ``text`` (RLVR-World's regex) when 1 <= N <= 5, else 0
    (unparseable, out of range or not a string). Never raises."""
    if not isinstance(text, str):
        return 0
    m = SCORE.search(text)
    if m is None:
        return 0
    n = int(m.group(1)[:3])
    return n if 1 <= n <= 5 else 0


class LikertJudge:
    """An LM judge as a ``ValueFunction`` (RLVR-World's value: reference ``language.md`` §1.6
    step 8, §2.4): :data:`LIKERT_PROMPT` (our wording of their structure: role, task types,
    two pitfalls, a 1-5 scale, ``[Rationale]: ... [Score]: N``) sampled ``samples`` times per
    state in one rollout; value = mean of :func:`likert_score` / 5, in [0, 1].

    model: a world-model directory of a text task (its backbone and tokenizer) or a local
    Hugging Face causal-LM directory (config, weights and tokenizer; never downloaded).
    max_obs_tokens: the tree's first tokens kept. ``last_info``: ``{"scores": [[int]], "judge_s"}``.
    """

    def __init__(self, model, samples: int = 20, temperature: float = 1.0, top_p: float | None = None,
                 max_new_tokens: int = 256, max_obs_tokens: int = 3840, device: str = "cpu", seed: int = 0):
        if samples < 1 or max_new_tokens < 1 or not temperature > 0:
            raise ValueError(f"LikertJudge needs samples >= 1, max_new_tokens >= 1 and temperature > 0, got "
                             f"{samples}, {max_new_tokens}, {temperature}")
        if (Path(model) / "worldmodel.json").is_file():
            wm = WorldModel.from_pretrained(model, device=device)
            self.tokenizer, lm = wm.task.tokenizer, wm.model
        else:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            if not Path(model).is_dir():
                raise FileNotFoundError(f"{model}: no such model directory (a world model or a local HF LM)")
            self.tokenizer = AutoTokenizer.from_pretrained(str(model), local_files_only=True)
            lm = AutoModelForCausalLM.from_pretrained(str(model), local_files_only=True).to(device)
        self.lm = WorldModel(lm, task=None, device=device)  # its generate(): the rollout engine
        self.samples, self.temperature, self.top_p = samples, float(temperature), top_p
        self.max_new_tokens, self.max_obs_tokens = max_new_tokens, max_obs_tokens
        self.generator = torch.Generator(device=device).manual_seed(seed)
        vocab = self.tokenizer.get_vocab()
        ends = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "<|eot|>")
        self.stop_ids = tuple(dict.fromkeys(int(i) for i in [self.tokenizer.eos_token_id, *(vocab.get(t) for t in ends)]
                                            if i is not None))
        pid = self.tokenizer.pad_token_id
        self.pad_id = int(pid if pid is not None else (self.stop_ids[0] if self.stop_ids else 0))
        self.last_info: dict = {}

    def prompt(self, objective: str, state) -> str:
        ids = self.tokenizer(state.observation, add_special_tokens=False)["input_ids"]
        tree = state.observation if len(ids) <= self.max_obs_tokens else self.tokenizer.decode(ids[: self.max_obs_tokens])
        history = "\n".join(state.previous_actions) or "None"
        return LIKERT_PROMPT.format(objective=objective, history=history, url=state.url, observation=tree)

    def _prompt_ids(self, text: str) -> list[int]:
        if getattr(self.tokenizer, "chat_template", None):
            out = self.tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                                     tokenize=True, return_dict=True)
            return list(out["input_ids"])
        return list(self.tokenizer(text)["input_ids"])

    def _answers(self, text: str) -> list[str]:
        from worldmodels.tasks.base import RolloutRequest, Segment

        ids = torch.tensor([self._prompt_ids(text)] * self.samples, dtype=torch.long)
        seg = Segment("generate", self.max_new_tokens, stop_ids=self.stop_ids)
        req = RolloutRequest(ids, [seg], pad_id=self.pad_id, group_size=self.samples)
        out = self.lm.generate(req, temperature=self.temperature, top_p=self.top_p, generator=self.generator)
        rows = out.completion_ids.cpu()
        return [self.tokenizer.decode(rows[r, : int(out.lengths[r])].tolist(), skip_special_tokens=True)
                for r in range(rows.shape[0])]

    def values(self, objective: str, states: list) -> list[float]:
        t0 = time.perf_counter()
        scores = [[likert_score(a) for a in self._answers(self.prompt(objective, s))] for s in states]
        self.last_info = {"scores": scores, "judge_s": round(time.perf_counter() - t0, 3)}
        return [sum(s) / len(s) / 5.0 for s in scores]
