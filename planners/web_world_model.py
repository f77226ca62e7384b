"""A trained web world model (``wm pretrain|rlvr web``) behind the MPC web agent's world-model
interface (:class:`planners.web_components.WebWorldModel`)."""

from __future__ import annotations

import re

from .web_components import AgentState

__all__ = ["LearnedWebWorldModel"]

_LIVE = re.compile(r"http://127\.0\.0\.1:\d+")


class LearnedWebWorldModel:
    """A trained web world model directory (``wm pretrain|rlvr web``) as the agent's world model.

    Each candidate is one sample of ``WorldModel.predict`` (the web task's ``predict_request``
    then ``decode``): the model writes a diff, which is applied to the current tree
    (``decode``'s ``next_tree``). Malformed output (no diff section) predicts the current tree
    unchanged and is counted: ``last_info`` holds ``malformed`` and the diff ``texts`` of the
    last call. ``temperature``/``top_p``: sampling (RLVR-World serves its world model with
    temperature 1.0, top-p 0.95). ``seed`` seeds a torch generator for reproducible samples.
    ``max_new_tokens``: the answer's token budget (None: the model's ``task.max_new_tokens``, the
    recipe's evaluation budget; a long page's diff can be cut there before its ``Updated
    items:`` section, which holds the new title and URL).

    ``fixed_origin`` (default True): ``wm data build web`` writes every live origin
    ``http://127.0.0.1:<port>`` as ``http://localhost:<site>``, so the model is shown the page and
    actions that way and its predicted tree gets the live origin back (False: as they are). A
    prompt longer than the model's window is reduced (the task's ``on_overflow="reduce"``), never
    an error.
    """

    def __init__(self, model_dir, device: str = "cpu", temperature: float = 1.0,
                 top_p: float | None = 0.95, seed: int = 0, fixed_origin: bool = True,
                 max_new_tokens: int | None = None):
        import torch

        from worldmodels.world_model import WorldModel

        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.model = WorldModel.from_pretrained(model_dir, device=device)
        if self.model.meta.get("kind") != "web":
            raise ValueError(f"{model_dir}: a web world model is needed, got kind "
                             f"{self.model.meta.get('kind')!r}")
        task = self.model.task
        task.on_overflow = "reduce"
        if max_new_tokens is not None:
            if max_new_tokens < 1:
                raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
            task.max_new_tokens = int(max_new_tokens)
        window = getattr(self.model.model.config, "max_position_embeddings", None)
        if task.max_prompt_tokens is None and window:
            task.max_prompt_tokens = max(1, int(window) - task.max_new_tokens)
        self.temperature, self.top_p, self.fixed_origin = temperature, top_p, fixed_origin
        self.generator = torch.Generator(device=self.model.device).manual_seed(seed)
        self.malformed_total, self.last_info = 0, {}

    def predict(self, state: AgentState, actions: list[str]) -> list[str]:
        if not actions:
            return []
        fx, live = _origin_maps(state, getattr(self, "fixed_origin", False))
        page = {"observation": fx(state.observation), "url": fx(state.url),
                "objective": state.objective,
                "previous_actions": [fx(a) for a in state.previous_actions]}
        out = self.model.predict([page] * len(actions), [fx(a) for a in actions], n_samples=1,
                                 temperature=self.temperature, top_p=self.top_p,
                                 generator=self.generator)
        trees = [live(t) if isinstance(t, str) else state.observation for t in out["next_tree"]]
        malformed = sum(not isinstance(t, str) for t in out["next_tree"])
        self.malformed_total += malformed
        self.last_info = {"malformed": malformed, "texts": list(out["text"])}
        return trees


def _origin_maps(state: AgentState, fixed: bool):
    """``(to_fixed, to_live)`` text maps between the live origin and ``http://localhost:<site>``
    (identities when not ``fixed`` or when the state shows no live origin)."""
    m = _LIVE.search(state.url) or _LIVE.search(state.observation)
    if not fixed or m is None or not state.site:
        return (lambda t: t), (lambda t: t)
    origin, fixed_text = m.group(0), f"http://localhost:{state.site}"
    return (lambda t: t.replace(origin, fixed_text)), (lambda t: t.replace(fixed_text, origin))
