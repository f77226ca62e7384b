"""The web world-model task: predict how a web page's accessibility tree changes after an action.

    task = WebTask.for_pretrain(WebTaskConfig(train=..., test=...))    # trains a BPE
    batch = task.collate(task.dataset("test")[:4])
    lm = task.lm_batch(batch)               # chat prompt + diff text + EOS, loss on answer + EOS
    req = task.rollout_request(batch)       # one generate segment ending at EOS / end of turn
    preds = task.decode(batch, rollout(model, req))   # {"text", "diff", "next_tree", ...}
    task.metrics(preds, task.reward_items(batch))     # precision, recall, f1, exact

Data: WMA-format transitions (``web_data``: WebArena or Mind2Web JSON). The target is the diff
text (``New items:`` / ``Deleted items:`` / ``Updated items:``, reference ``language.md`` §1.3)
of ``web_diff.tree_diff(observation, next_observation, mode=diff_mode)`` (``clean`` default,
``wma`` compat), or the file's gold diff with ``target="gold"``. Prompts: ``web_prompt``
(``rlvr_world`` / ``compact``, with the reduction). Answers are parsed with
``web_diff.parse_diff_text`` (never evaluated) and scored by the ``f1`` reward
(``web_rewards``, registered on import of this module) and ``web_metrics``.

The tokenized-chat machinery (``collate``, ``lm_batch``, ``max_length``, the rollout segment and
request, the tokenizer saved as ``tokenizer/``) is the text-game task's: this class extends it.

Evaluation: per-sample ``precision``, ``recall``, ``f1``, ``exact`` (``web_metrics``) and
``parsed`` (the answer has a section header); with ``eval_rows`` set to a list, ``report`` adds
the per-site means (``web_metrics.aggregate``) of the model and of the ``no_change`` baseline
(``None`` in every section), and the prompt reductions.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import torch

from worldmodels.records import RecordError
from worldmodels.tasks import web_rewards  # noqa: F401  (registers the f1 reward)
from worldmodels.tasks.text_game import TextGameTask
from worldmodels.tasks.web_config import WebTaskConfig, check_web_fields
from worldmodels.tasks.web_data import WebTransition, load_mind2web, load_webarena
from worldmodels.tasks.web_diff import (
    WebDiff,
    apply_diff,
    parse_diff_text,
    split_sections,
    tree_diff,
)
from worldmodels.tasks.web_metrics import METRICS, aggregate, says_no_change, transition_metrics
from worldmodels.tasks.web_prompt import fit_prompt, render_prompt
from worldmodels.web_tree import render_tree

NO_CHANGE_TEXT = WebDiff().to_text()  # "New items:\nNone\n\nDeleted items:\nNone\n\nUpdated items:\nNone"


def load_web(path, data_format: str = "auto", limit: int | None = None) -> list[WebTransition]:
    """Transitions of ``path`` in ``data_format`` (auto: WebArena's fields, else Mind2Web's),
    the first ``limit`` ones (None: all). RecordError names the file, record and field."""
    if data_format == "webarena":
        out = load_webarena(path)
    elif data_format == "mind2web":
        out = load_mind2web(path)
    else:
        try:
            out = load_webarena(path)
        except RecordError as e_wa:
            try:
                out = load_mind2web(path)
            except RecordError as e_m2w:
                raise RecordError(f"{path}: neither WebArena nor Mind2Web WMA format (task.data_format=auto):"
                                  f" as WebArena: {e_wa}; as Mind2Web: {e_m2w}") from e_m2w
    return out[:limit] if limit is not None else out


def target_text(t: WebTransition, target: str = "diff", diff_mode: str = "clean") -> str:
    """The answer of ``t``: the file's gold diff (``target="gold"``; RecordError naming the record
    when absent) or ``tree_diff(observation, next_observation, diff_mode).to_text()``."""
    if target == "gold":
        if t.gold is None:
            raise RecordError(f"{t.source}: task.target=gold but the record has no new_items/deleted_items/"
                              f"updated_items (use task.target=diff)")
        return t.gold
    return tree_diff(t.observation, t.next_observation, mode=diff_mode).to_text()


class WebTask(TextGameTask):
    """See the module docstring; keyword arguments are ``WebTaskConfig``'s fields."""

    name = "web"
    higher_is_better = {**{m: True for m in (*METRICS, "parsed")}, "no_change": None}  # a diagnostic
    right_or_wrong = frozenset({"exact", "parsed"})   # F1, precision and recall are continuous

    def __init__(self, tokenizer, train: str, test: str, data_format="auto", max_train=None, max_test=None,
                 target="diff", diff_mode="clean", prompt_style="compact", max_prompt_tokens=None,
                 on_overflow="error", max_new_tokens=512, compat_rlvr_world=False):
        self.settings = dict(train=str(train), test=str(test), data_format=data_format, max_train=max_train,
                             max_test=max_test, target=target, diff_mode=diff_mode, prompt_style=prompt_style,
                             max_prompt_tokens=max_prompt_tokens, on_overflow=on_overflow,
                             max_new_tokens=max_new_tokens, compat_rlvr_world=bool(compat_rlvr_world))
        check_web_fields(WebTaskConfig(**self.settings))
        self.__dict__.update(self.settings)
        self._setup(tokenizer)

    # ----- data (transitions, prompt_text, lm_dataset: the text-game task's, with these hooks) --
    def _load(self, path: str, limit: int | None) -> list[WebTransition]:
        return load_web(path, self.data_format, limit)

    def _fit(self, t: WebTransition, count) -> tuple[str, str, int]:
        return fit_prompt(t, self.prompt_style, count, self.max_prompt_tokens, reduce=self.on_overflow == "reduce")

    def encode(self, t: WebTransition, index: int = 0, with_target: bool = True) -> dict:
        """One item: prompt ids, answer ids (the target diff text + EOS), the transition and
        ``gold`` (the target text; "" without target, e.g. for predict)."""
        _, reduction, ids = self.prompt_text(t)
        gold = target_text(t, self.target, self.diff_mode) if with_target else ""
        answer = self.tokenizer(gold, add_special_tokens=False)["input_ids"]
        return self.item(index, t, ids, reduction, [*answer, self.eos_id], gold=gold)

    def dataset(self, split: str) -> list[dict]:
        """Every transition of ``split`` as an item (MLE, RLVR and evaluation alike)."""
        return self.lm_dataset(split)

    def collate(self, items: list[dict]) -> dict:
        """The text-game collate plus ``gold`` (list of target texts)."""
        return {**super().collate(items), "gold": [it["gold"] for it in items]}

    # ----- rollouts -------------------------------------------------------------------------
    def decode(self, batch: dict, output) -> dict:
        """``{"text": [str], "diff": [WebDiff], "next_tree": [str | None], "stopped": (B,),
        "lengths": (B,)}``: each row's text up to its stop token, its parsed diff and the tree it
        predicts (the observation with the diff applied; None when the text has no section).
        ``compat_rlvr_world``: the text keeps special tokens and the stop token, as verl's
        ``NaiveRewardManager`` decodes (reference ``language.md`` §1.3), so the EOS string sticks
        to the last item, which then never matches; off (default): both are dropped."""
        ids, lengths, stopped = output.completion_ids.cpu(), output.lengths.cpu(), output.stopped.cpu()
        texts = []
        for r in range(ids.shape[0]):
            row = ids[r, : int(lengths[r])].tolist()
            if self.compat_rlvr_world:
                texts.append(self.tokenizer.decode(row, skip_special_tokens=False))
            else:
                texts.append(self.tokenizer.decode(row[:-1] if stopped[r] else row, skip_special_tokens=True))
        diffs = [parse_diff_text(t) for t in texts]
        trees = []
        for t, text, d in zip(batch["transition"], texts, diffs, strict=True):
            try:
                trees.append(render_tree(apply_diff(d, t.observation)) if split_sections(text) else None)
            except Exception:  # malformed output never crashes a run
                trees.append(None)
        return {"text": texts, "diff": diffs, "next_tree": trees, "stopped": stopped, "lengths": lengths}

    def reward_items(self, batch: dict) -> dict:
        return {"gold": list(batch["gold"]), "site": [t.site for t in batch["transition"]],
                "prompt_tokens": list(batch["prompt_tokens"]), "reduction": list(batch["reduction"])}

    def metrics(self, predictions: dict, items: dict) -> dict[str, torch.Tensor]:
        rows = []
        for i, (text, gold) in enumerate(zip(predictions["text"], items["gold"], strict=True)):
            m = transition_metrics(text, gold)
            m["parsed"] = float(bool(split_sections(text)) if isinstance(text, str) else False)
            m["no_change"] = float(says_no_change(text))  # share answering "no change": a diagnostic
            rows.append(m)
            if self.eval_rows is not None:
                self.eval_rows.append({**m, "source": predictions.get("source", "model"),
                                       "site": items["site"][i], "reduction": items["reduction"][i],
                                       "prompt_tokens": items["prompt_tokens"][i]})
        return {k: torch.tensor([r[k] for r in rows], dtype=torch.float32)
                for k in (*METRICS, "parsed", "no_change")}

    def baselines(self, batch: dict) -> dict:
        n = len(batch["transition"])
        return {"no_change": {"text": [NO_CHANGE_TEXT] * n, "source": "no_change"}}

    def site_tables(self) -> dict:
        """``{source: web_metrics.aggregate(rows, ["site"])}`` of the recorded ``eval_rows``, and
        the prompt reductions of the model's rows (``{"reductions": {name: count}}``)."""
        by_source: dict[str, list[dict]] = {}
        for r in self.eval_rows or []:
            by_source.setdefault(r["source"], []).append(r)
        model_rows = by_source.get("model", [])
        return {"sources": {s: aggregate(rs, ["site"]) for s, rs in by_source.items()},
                "reductions": dict(Counter(r["reduction"] for r in model_rows))}

    def report(self, res: dict) -> tuple[dict, str]:
        """The default table, plus (when ``eval_rows`` were recorded) per-site means per source."""
        data, md = super(TextGameTask, self).report(res)
        if self.eval_rows:
            tables = self.site_tables()
            data = {**data, "site_tables": tables}
            lines = ["", "## Per site (mean over transitions)", "",
                     "| source | group | n | " + " | ".join(METRICS) + " |", "|---|---|---|" + "---|" * len(METRICS)]
            for src, groups in tables["sources"].items():
                for g, v in groups.items():
                    lines.append(f"| {src} | {g} | {v['n']} | " + " | ".join(f"{v[m]:.4f}" for m in METRICS) + " |")
            lines += ["", f"Prompt reductions: {tables['reductions']}"]
            md = md + "\n".join(lines) + "\n"
        return data, md

    def save_examples(self, out_dir, batch, predictions, names):
        """One ``<name>.json`` per row: the transition's source, site, URL, action, gold diff text,
        the predicted text and its four metrics. Returns the paths."""
        Path(out_dir).mkdir(parents=True, exist_ok=True)

        def example(i: int) -> dict:
            t, text, gold = batch["transition"][i], predictions["text"][i], batch["gold"][i]
            return {"source": t.source, "site": t.site, "url": t.url, "action": t.action, "gold_diff": gold,
                    "predicted_text": text, **transition_metrics(text, gold)}

        paths = [Path(out_dir) / f"{name}.json" for name in names]
        for i, p in enumerate(paths):
            p.write_text(json.dumps(example(i), indent=1))
        return [str(p) for p in paths]

    def predict_request(self, context: list[dict], actions: list[str], n_samples: int = 1):
        """``context``: B pages, each ``{"observation": tree text[, "url", "objective",
        "previous_actions": [str]]}``; ``actions``: B action strings. ``decode`` then gives each
        sample's diff text, parsed diff and predicted tree."""
        if isinstance(actions, str) or len(context) != len(actions):
            raise ValueError(f"predict needs lists of pages and actions of the same length, got "
                             f"{len(context)} and {1 if isinstance(actions, str) else len(actions)}")
        items = []
        for i, (page, a) in enumerate(zip(context, actions, strict=True)):
            if not isinstance(page, dict) or not isinstance(page.get("observation"), str):
                raise ValueError(f"predict: page {i} needs an 'observation' (accessibility-tree text)")
            t = WebTransition(str(page.get("objective", "")), str(page.get("url", "")),
                              list(page.get("previous_actions") or ["None"]), page["observation"], a,
                              page["observation"], None, "", f"predict[{i}]", dict(page))
            items.append(self.encode(t, i, with_target=False))
        batch = self.repeat(self.collate(items), n_samples)
        return batch, self.rollout_request(batch)

    # ----- persistence (from_meta, for_pretrain: the text-game task's, with these hooks) ----
    config_class = WebTaskConfig

    @classmethod
    def load_train(cls, cfg: WebTaskConfig) -> list[WebTransition]:
        return load_web(cfg.train, cfg.data_format, cfg.max_train)

    @classmethod
    def corpus(cls, train: list[WebTransition], cfg: WebTaskConfig) -> list[str]:
        return corpus_texts(train, cfg)


def corpus_texts(transitions: list[WebTransition], cfg: WebTaskConfig) -> list[str]:
    """The distinct prompts and target texts of ``transitions``: what the BPE is trained on."""
    texts: dict[str, None] = {NO_CHANGE_TEXT: None}
    for t in transitions:
        texts[render_prompt(t, cfg.prompt_style)] = None
        texts[target_text(t, cfg.target, cfg.diff_mode)] = None
    return list(texts)
