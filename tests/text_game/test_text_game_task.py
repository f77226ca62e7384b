"""The text-game Task on the generic interface: items, left-padded batches, labels only on the
answer, rollout requests with EOS / end-of-turn stops, decode -> parsed diffs, metrics,
baselines and the accuracy report, RL sampling, persistence and predict."""

import json

import pytest
import tg_records as R
import torch

from worldmodels.tasks import get_task_class
from worldmodels.tasks.base import IGNORE_INDEX
from worldmodels.tasks.text_game import TextGameTask
from worldmodels.tasks.text_game_config import TextGameOverrides, TextGameTaskConfig
from worldmodels.tasks.text_game_parse import make_diff
from worldmodels.tasks.text_game_prompt import PromptTooLong, render_answer
from worldmodels.train.rollout import RolloutOutput


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("tg")
    return R.write_records(d / "train.jsonl", copies=4), R.write_records(d / "test.jsonl")


@pytest.fixture(scope="module")
def task(files):
    return TextGameTask.for_pretrain(TextGameTaskConfig(train=str(files[0]), test=str(files[1]),
                                                        bpe_vocab_size=400, max_new_tokens=40))


def fake_output(task, answers: list[list[int]], length: int) -> RolloutOutput:
    """A rollout that generated ``answers`` (ids ending at a stop id, or not), padded to ``length``."""
    ids = torch.full((len(answers), length), task.pad_id, dtype=torch.long)
    for i, a in enumerate(answers):
        ids[i, : len(a)] = torch.tensor(a[:length])
    stopped = torch.tensor([a[-1] in task.stop_ids and len(a) <= length for a in answers])
    lengths = torch.tensor([min(len(a), length) for a in answers])
    return RolloutOutput(ids, ids, torch.zeros(ids.shape), ids != task.pad_id, stopped, lengths)


def test_registered_and_built_with_a_bpe_on_the_corpus(task):
    assert get_task_class("text_game") is TextGameTask
    assert task.vocab_size == len(task.tokenizer) <= 400 and task.pad_id == 0
    assert task.stop_ids == (task.tokenizer.eos_token_id, task.tokenizer.convert_tokens_to_ids("<|im_end|>"))
    assert len(task.lm_dataset("train")) == 20 and len(task.dataset("test")) == 5


def test_items_batches_and_labels(task):
    items = task.dataset("test")
    t = items[2]["transition"]
    answer = task.tokenizer.decode(items[2]["answer"][:-1].tolist())
    assert answer == render_answer(make_diff(t.current, t.next, t.current_score, t.next_score), "compact")
    assert int(items[2]["answer"][-1]) == task.eos_id
    prompt = task.tokenizer.decode(items[2]["prompt"].tolist())
    assert prompt.startswith("<|im_start|>user\nTask: Your task is to eat the apple.\nState: {")
    assert prompt.endswith("<|im_end|>\n<|im_start|>assistant\n") and t.action in prompt
    batch = task.collate(items)
    P = max(len(it["prompt"]) for it in items)
    assert batch["prompt_ids"].shape == (5, P)
    for i, it in enumerate(items):  # left padding
        n = len(it["prompt"])
        assert batch["prompt_mask"][i].tolist() == [False] * (P - n) + [True] * n
        assert batch["prompt_ids"][i, P - n:].tolist() == it["prompt"].tolist()
    lm = task.lm_batch(batch)
    for i, it in enumerate(items):  # labels on the answer + EOS only, at the row's end
        lab = lm["labels"][i]
        assert lab[lab != IGNORE_INDEX].tolist() == it["answer"].tolist()
        assert lab[-len(it["answer"]):].tolist() == it["answer"].tolist()
        assert int(lm["attention_mask"][i].sum()) == len(it["prompt"]) + len(it["answer"])
    assert task.max_length() == max(len(it["prompt"]) for it in task.lm_dataset("train") + items) + max(
        40, max(len(it["answer"]) for it in task.lm_dataset("train") + items))


def test_rollout_request_decode_and_metrics(task):
    items = task.dataset("test")
    batch = task.collate(items)
    req = task.rollout_request(batch)
    (seg,) = req.segments
    assert seg.kind == "generate" and seg.length == 40 and seg.stop_ids == task.stop_ids
    assert seg.allowed == (1, task.vocab_size) and req.pad_id == 0 and torch.equal(req.prompt_mask, batch["prompt_mask"])
    im_end = task.stop_ids[1]
    golds = [it["answer"].tolist() for it in items]  # end with EOS
    golds[1] = golds[1][:-1] + [im_end]  # end of turn stops too
    golds[3] = task.tokenizer("not json at all", add_special_tokens=False)["input_ids"]  # no stop
    preds = task.decode(batch, fake_output(task, golds, max(map(len, golds))))
    assert preds["text"][0] == render_answer(make_diff(*_diff_args(items[0])), "compact")
    assert preds["diff"][3] is None and preds["state"][3] is None and not preds["stopped"][3]
    assert preds["state"][2][0][-1]["name"] == "apple slice (ID: 5)"  # the created object is applied
    task.eval_rows = []
    m = task.metrics(preds, task.reward_items(batch))
    assert m["accuracy"].tolist() == [1, 1, 1, 0, 1] and m["parsed"].tolist() == [1, 1, 1, 0, 1]
    assert m["task_specific"].tolist() == pytest.approx([1.3, 1.3, 1.3, 0.0, 0.3])
    assert m["changed_share"].tolist() == [1, 1, 1, 1, 0] and m["correct_changed_share"].tolist() == [1, 1, 1, 0, 0]
    base = task.baselines(batch)["no_change"]
    bm = task.metrics(base, task.reward_items(batch))
    assert bm["accuracy"].tolist() == [0, 0, 0, 0, 1]
    data, md = task.report({"items": 5, "n_samples": 1, "metrics": {k: {"mean": float(v.mean()), "best_of_n": 0}
                                                                    for k, v in m.items()}, "baselines": {}})
    task.eval_rows = None
    overall = data["accuracy_tables"]["sources"]
    assert overall["model"]["overall"]["changed"] == pytest.approx(
        {"n": 4, "accuracy": 0.75, "task_specific": 3.9 / 4, "parsed": 0.75})
    assert overall["no_change"]["overall"]["unchanged"]["accuracy"] == 1.0
    assert overall["no_change"]["overall"]["changed"]["accuracy"] == 0.0
    assert set(overall["model"]["per_verb"]) == {"turn", "eat", "slice", "answer", "look"}
    assert data["accuracy_tables"]["prompt_tokens"]["reductions"] == {"none": 5}
    assert "| answer | 0.0 (1) | – | 0.0 (1) | 0.0 (1) | – | 0.0 (1) |" in md


def _diff_args(item):
    t = item["transition"]
    return t.current, t.next, t.current_score, t.next_score


def test_rl_sampling_serves_changed_records_plus_a_share_of_unchanged(files, task):
    rl = TextGameTask(task.tokenizer, str(files[0]), str(files[1]), rl_sampling=True, rl_unchanged_ratio=0.5)
    items = rl.dataset("train")
    # 4 copies: 12 gold-changed records, then round(0.5 * 12) = 6 of the 8 unchanged (with replacement)
    assert len(items) == 18 and all(it["transition"].gold_changed for it in items[:12])
    assert not any(it["transition"].gold_changed for it in items[12:])
    assert len(rl.lm_dataset("train")) == 20 and len(rl.dataset("test")) == 5
    exact = TextGameTask(task.tokenizer, str(files[0]), str(files[1]), rl_sampling=True,
                         rl_unchanged_ratio=0.0, rl_split="exact")
    assert len(exact.dataset("train")) == 16  # the score-only change counts as changed here


def test_meta_round_trip_and_overrides(task, tmp_path):
    task.save_assets(tmp_path)
    meta = task.to_meta()
    back = TextGameTask.from_meta(json.loads(json.dumps(meta)), tmp_path, **TextGameOverrides(max_new_tokens=9).task_kwargs())
    assert back.tokenizer.get_vocab() == task.tokenizer.get_vocab() and back.max_new_tokens == 9
    assert {k: v for k, v in back.to_meta().items() if k != "max_new_tokens"} == \
        {k: v for k, v in meta.items() if k != "max_new_tokens"}
    assert back.dataset("test")[0]["prompt"].tolist() == task.dataset("test")[0]["prompt"].tolist()
    cfg = TextGameTaskConfig(train=task.train, test=task.test, tokenizer=str(tmp_path / "tokenizer"))
    assert TextGameTask.for_pretrain(cfg).tokenizer.get_vocab() == task.tokenizer.get_vocab()


def test_predict_request_from_states(task):
    rec = R.lamp_on()["current_state"]
    state = {**rec, "game": "lamp-room", "score": dict(R.SCORE0)}
    batch, req = task.predict_request([state, state], ["turn on lamp (ID: 2)", "look"], n_samples=3)
    assert req.prompt_ids.shape[0] == 6 and batch["transition"][0] is batch["transition"][2]
    text = task.tokenizer.decode(req.prompt_ids[3][req.prompt_mask[3]].tolist())
    assert "Action: look" in text
    with pytest.raises(ValueError, match="same length"):
        task.predict_request([state], ["a", "b"])
    with pytest.raises(ValueError, match="lacks"):
        task.predict_request([{"objects": []}], ["a"])


def test_prompt_limit_errors_or_reduces(files, task, bytesized32):
    args = dict(train=str(files[0]), test=str(files[1]))
    with pytest.raises(PromptTooLong, match=r"test.jsonl:1: the compact prompt has \d+ tokens, more than "
                                            r"task.max_prompt_tokens=50"):
        TextGameTask(task.tokenizer, **args, max_prompt_tokens=50).dataset("test")
    rules = bytesized32 / "rules"
    (rules.parent / "rules").exists()
    # rlvr_world on the hand-made game: rules of a game the rules files lack are named
    with pytest.raises(KeyError, match="no object rules for game 'lamp-room'"):
        TextGameTask(task.tokenizer, **args, prompt_style="rlvr_world", rules=str(rules)).dataset("test")
    shots = TextGameTask(task.tokenizer, **args, prompt_style="rlvr_world",
                         examples=str(bytesized32 / "examples.json"))
    n_full = len(shots.dataset("test")[0]["prompt"])
    reduced = TextGameTask(task.tokenizer, **args, prompt_style="rlvr_world", on_overflow="reduce",
                           examples=str(bytesized32 / "examples.json"), max_prompt_tokens=n_full - 1)
    item = reduced.dataset("test")[0]
    assert item["reduction"] in ("one_shot", "no_shots") and item["prompt_tokens"] < n_full
