"""WebTask on the shared WebArena sample and on the synthetic file: items, targets, decode +
reward, the "no change" baseline by hand, prompts and their reduction."""

import re

import pytest
import torch
from web_records import records

from worldmodels.records import RecordError
from worldmodels.rewards import build_reward
from worldmodels.tasks import get_task_class
from worldmodels.tasks.text_tokenizer import chat_prompt_ids, train_bpe_tokenizer
from worldmodels.tasks.web import NO_CHANGE_TEXT, WebTask, corpus_texts, load_web
from worldmodels.tasks.web_config import WebTaskConfig
from worldmodels.tasks.web_diff import tree_diff
from worldmodels.tasks.web_prompt import PromptTooLong, render_prompt


class Out:
    """A rollout output holding the given completions (ids + EOS)."""

    def __init__(self, task, texts):
        rows = [task.tokenizer(t, add_special_tokens=False)["input_ids"] + [task.eos_id] for t in texts]
        L = max(map(len, rows))
        self.completion_ids = torch.tensor([r + [task.pad_id] * (L - len(r)) for r in rows])
        self.lengths = torch.tensor([len(r) for r in rows])
        self.stopped = torch.ones(len(rows), dtype=torch.bool)


def make_task(train, test=None, **kw) -> WebTask:
    cfg = WebTaskConfig(train=str(train), test=str(test or train), bpe_vocab_size=400, **kw)
    return WebTask.for_pretrain(cfg)


@pytest.fixture
def wa(shared_data):
    return shared_data / "wma" / "sample_webarena_tao_dev.json"


def test_registered_and_config_errors():
    assert get_task_class("web") is WebTask
    with pytest.raises(ValueError, match="task.diff_mode must be one of"):
        WebTaskConfig(diff_mode="exact")
    with pytest.raises(ValueError, match="task.max_prompt_tokens must be >= 1"):
        WebTaskConfig(max_prompt_tokens=0)


def test_shared_sample_items_targets_and_gold_scores_f1_one(wa):
    task = make_task(wa, prompt_style="rlvr_world", max_new_tokens=64)
    ts = load_web(wa)
    items = task.dataset("test")
    assert len(items) == len(ts) == 5
    f1 = build_reward("f1")
    for it, t in zip(items, ts, strict=True):
        want = tree_diff(t.observation, t.next_observation, mode="clean").to_text()
        assert it["gold"] == want
        assert task.tokenizer.decode(it["answer"][:-1].tolist()) == want  # the BPE round-trips the target
    batch = task.collate(items)
    preds = task.decode(batch, Out(task, batch["gold"]))
    assert f1(preds, task.reward_items(batch))[0].tolist() == [1.0] * 5
    m = task.metrics(preds, task.reward_items(batch))
    assert m["f1"].tolist() == [1.0] * 5 and m["exact"].tolist() == [1.0] * 5
    wma = make_task(wa, diff_mode="wma", max_new_tokens=64).dataset("test")[0]["gold"]
    assert wma == tree_diff(ts[0].observation, ts[0].next_observation, mode="wma").to_text()


def test_gold_target_and_no_change_baseline_by_hand(wa):
    task = make_task(wa, target="gold", max_new_tokens=64)
    t = load_web(wa)[0]
    batch = task.collate(task.dataset("test")[:1])
    assert batch["gold"] == [t.gold]
    # record 0's gold: New None, Deleted None, k distinct Updated lines -> the baseline matches
    # the two None items: precision 2/3, recall 2/(2+k)
    upd = t.raw["updated_items"].strip().split("\n")
    k = len({x.strip() for x in upd if x.strip()})
    assert t.raw["new_items"].strip() == "None" and t.raw["deleted_items"].strip() == "None" and k > 1
    base = task.baselines(batch)["no_change"]
    assert base["text"] == [NO_CHANGE_TEXT]
    m = task.metrics(base, task.reward_items(batch))
    p, r = 2 / 3, 2 / (2 + k)
    assert m["precision"].item() == pytest.approx(p) and m["recall"].item() == pytest.approx(r)
    assert m["f1"].item() == pytest.approx(2 * p * r / (p + r)) and m["exact"].item() == 0.0


def test_gold_target_without_gold_names_the_record(wma_file):
    with pytest.raises(RecordError, match=r"web.json: record 0: task.target=gold"):
        make_task(wma_file, target="gold")


def test_no_change_baseline_per_site_on_synthetic(wma_file):
    task = make_task(wma_file)
    batch = task.collate(task.dataset("test"))
    task.eval_rows = []
    m = task.metrics(task.baselines(batch)["no_change"], task.reward_items(batch))
    # gold sets: 0 -> {new 1, deleted 2, updated 1}: TP 0; 1 -> {new 1, None, None}: TP 2 of 3/3;
    # 2, 3 -> all None: F1 1
    assert m["f1"].tolist() == pytest.approx([0.0, 2 / 3, 1.0, 1.0])
    tables = task.site_tables()["sources"]["no_change"]
    assert tables["site=shop.test:7770"]["f1"] == pytest.approx(0.5)
    assert tables["site=find.test:9999"]["f1"] == pytest.approx(5 / 6)
    assert tables["all"]["exact"] == pytest.approx(0.5) and tables["all"]["n"] == 4


def test_malformed_output_scores_zero_and_never_crashes(wma_file):
    task = make_task(wma_file)
    batch = task.collate(task.dataset("test")[:2])
    preds = task.decode(batch, Out(task, ["no sections at all", "New items:\n[9] link 'Mug'\n\x00junk"]))
    assert preds["next_tree"][0] is None and "[9] link 'Mug'" in preds["next_tree"][1]
    m = task.metrics(preds, task.reward_items(batch))
    assert m["f1"][0].item() == 0.0 and m["parsed"].tolist() == [0.0, 1.0]
    assert build_reward("f1")(preds, task.reward_items(batch))[0][0].item() == 0.0


def test_prompts_keep_the_action_when_reduced(wa):
    task = make_task(wa, prompt_style="rlvr_world")
    t = load_web(wa)[0]
    full, red, _ = task.prompt_text(t)
    assert red == "none"
    for label in ("URL:", "OBJECTIVE:", "PREVIOUS ACTION:", "CURRENT OBSERVATION:", "CURRENT ACTION:",
                  "New items:", "Deleted items:", "Updated items:"):
        assert label in full
    assert full.index("CURRENT OBSERVATION:") < full.index("CURRENT ACTION:") and full.rstrip().endswith(t.action)
    n_full = len(task.prompt_text(t)[2])
    for style in ("rlvr_world", "compact"):
        small = make_task(wa, prompt_style=style, max_prompt_tokens=n_full // 3, on_overflow="reduce")
        text, red, ids = small.prompt_text(t)
        assert red == "tree_cut" and len(ids) <= n_full // 3 and t.action in text and "more lines cut" in text
        kept = len(t.observation.split("\n")) - int(re.search(r"\((\d+) more lines cut\)", text).group(1))
        more = render_prompt(t, style, with_example=False, tree_lines=kept + 1)  # one more tree line
        assert len(chat_prompt_ids(small.tokenizer, more)) > n_full // 3
    strict = make_task(wa, prompt_style="compact", max_prompt_tokens=50)
    with pytest.raises(PromptTooLong, match=r"record 0: the compact prompt has \d+ tokens"):
        strict.dataset("test")
    tiny = make_task(wa, prompt_style="compact", max_prompt_tokens=5, on_overflow="reduce")
    with pytest.raises(PromptTooLong, match="the action is never cut"):
        tiny.dataset("test")


def test_corpus_has_prompts_and_targets(wma_file):
    cfg = WebTaskConfig(train=str(wma_file), test=str(wma_file))
    texts = corpus_texts(load_web(wma_file), cfg)
    assert NO_CHANGE_TEXT in texts and any("click [6]" in x for x in texts)
    tok = train_bpe_tokenizer(texts, 400)
    assert tok.decode(tok(records()[0]["observation"])["input_ids"]) == records()[0]["observation"]


def test_auto_format_reads_mind2web_and_names_both_failures(shared_data, tmp_path):
    from worldmodels.tasks.web_data import load_mind2web

    m2w = shared_data / "wma" / "sample_mind2web_acctree_dev.json"
    auto, direct = load_web(m2w), load_mind2web(m2w)
    assert [t.action for t in auto] == [t.action for t in direct] and auto[0].site == direct[0].site
    assert len(load_web(m2w, "mind2web", limit=2)) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"objective": "x"}\n')
    with pytest.raises(RecordError, match=r"bad.jsonl: neither WebArena nor Mind2Web .*as Mind2Web: .*confirmed_task"):
        load_web(bad)


def test_compat_decode_keeps_the_eos_string_and_loses_the_last_item(wma_file):
    ours, compat = make_task(wma_file), make_task(wma_file, compat_rlvr_world=True)
    batch = ours.collate(ours.dataset("test")[:2])
    gold = batch["gold"]
    f1 = build_reward("f1")
    assert f1(ours.decode(batch, Out(ours, gold)), ours.reward_items(batch))[0].tolist() == [1.0, 1.0]
    preds = compat.decode(batch, Out(compat, gold))
    assert all(t.endswith("<|endoftext|>") for t in preds["text"])
    # record 0: 4 gold items (new 1, deleted 2, updated 1 -> "... $0.00'<|endoftext|>" misses): P = R = 3/4
    # record 1: 3 items (new 1, None, None -> the last None misses): P = R = 2/3
    got = f1(preds, compat.reward_items(batch))[0].tolist()
    assert got == pytest.approx([3 / 4, 2 / 3])
