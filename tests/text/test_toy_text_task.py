"""The toy text task's pieces on its real tokenizer: chat-template prompts, left-padded MLE
batches and rollout requests, stop flags and decoding, metrics / baseline / rewards by hand,
persistence, and padded == unpadded log-probs (MLE and rollout) against the plain forward.
Early exit with counted forwards: ``tests/train/test_rollout.py`` (and on a trained toy model,
``test_toy_text_pipeline.py``); GRPO on padded / stopping batches against the per-row
computation: ``tests/train/test_grpo_knobs.py``.

    OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/text/test_toy_text_task.py
"""

import copy

import pytest
import torch
import torch.nn.functional as F
import toy_text
from transformers import PreTrainedTokenizerFast

from worldmodels.models import BackboneConfig, LoRAConfig, lora, make_backbone
from worldmodels.rewards import build_reward
from worldmodels.tasks.base import IGNORE_INDEX
from worldmodels.train.grpo import GRPOTrainer
from worldmodels.train.grpo_config import GRPOConfig
from worldmodels.train.mle import token_loss_sum
from worldmodels.train.rollout import rollout, sequence_logprobs


@pytest.fixture(scope="module")
def task():
    return toy_text.ToyTextTask(toy_text.build_tokenizer())


@pytest.fixture(scope="module")
def model(task):
    torch.manual_seed(0)
    return make_backbone(BackboneConfig(preset="test", max_positions=64), task.vocab_size).eval()


def test_prompts_come_from_the_chat_template_of_a_real_tokenizer(task):
    tok = task.tokenizer
    assert isinstance(tok, PreTrainedTokenizerFast)
    assert (tok.pad_token_id, tok.eos_token_id, tok.convert_tokens_to_ids(toy_text.EOT)) == (0, 1, 2)
    data = task.dataset("train")
    it = data[0]
    text = f"<|user|> state: {it['state']}. action: {it['action']}. <|eot|> <|assistant|>"  # by hand
    assert tok.apply_chat_template(toy_text.prompt_messages(it["state"], it["action"]),
                                   add_generation_prompt=True, tokenize=False) == text
    assert it["prompt"].tolist() == tok(text, add_special_tokens=False)["input_ids"]
    assert it["answer"][-1] == tok.eos_token_id
    assert toy_text.detokenize(tok.decode(it["answer"][:-1])) == it["next"]
    assert len({len(x["prompt"]) for x in data}) >= 5 and {len(x["answer"]) for x in data} == {3, 6, 9}


def test_lm_batch_left_pads_and_labels_only_the_answer_and_eos(task):
    items = task.dataset("train")[:8]
    lm = task.lm_batch(task.collate(items))
    ids, labels, mask = lm["input_ids"], lm["labels"], lm["attention_mask"]
    assert len({int((m == 0).sum()) for m in mask}) > 1  # rows really are padded differently
    for i, it in enumerate(items):
        n_pad = int((mask[i] == 0).sum())
        assert mask[i, n_pad:].all() and (ids[i, :n_pad] == task.pad_id).all()  # left padding only
        assert torch.equal(ids[i, n_pad:], torch.cat([it["prompt"], it["answer"]]))
        on = labels[i] != IGNORE_INDEX
        assert torch.equal(labels[i][on], it["answer"]) and on[-len(it["answer"]):].all()


def test_left_padded_mle_loss_equals_each_row_alone(task, model):
    items = task.dataset("train")[:6]
    with torch.no_grad():
        got, n = token_loss_sum(model, task.lm_batch(task.collate(items)))
        want = 0.0
        for it in items:  # the plain transformers forward of the unpadded row
            row = torch.cat([it["prompt"], it["answer"]])
            logits = model(input_ids=row[None]).logits[0]
            k = len(it["answer"])
            want += F.cross_entropy(logits[-k - 1:-1], it["answer"], reduction="sum")
    assert n == sum(len(it["answer"]) for it in items)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_rollout_stops_at_eos_or_end_of_turn_and_matches_unpadded_rows(task, model):
    batch = task.collate(task.dataset("train")[:16])
    req = task.rollout_request(batch)
    assert torch.equal(req.prompt_mask, batch["prompt_mask"]) and not req.prompt_mask.all()
    assert req.segments[0].stop_ids == (task.eos_id, task.eot_id) and req.pad_id == task.pad_id
    out = rollout(model, req, generator=torch.Generator().manual_seed(0))
    preds = task.decode(batch, out)
    L, stops = task.max_new_tokens, [task.eos_id, task.eot_id]
    for r in range(16):
        comp = out.completion_ids[r].tolist()
        hit = [j for j, t in enumerate(comp) if t in stops]
        n = hit[0] + 1 if hit else L  # found independently of the engine
        assert bool(out.stopped[r]) == bool(hit) and int(out.lengths[r]) == n
        assert all(t == task.pad_id for t in comp[n:]) and not out.loss_mask[r, n:].any()
        answer = comp[: n - 1] if hit else comp
        assert preds["text"][r] == toy_text.detokenize(task.tokenizer.decode(answer, skip_special_tokens=True))
        # the same tokens scored by the plain forward of the unpadded row: same log-probs
        prompt = req.prompt_ids[r][req.prompt_mask[r]]
        seq = torch.cat([prompt, out.completion_ids[r, :n]])[None]
        with torch.no_grad():
            logits = model(input_ids=seq).logits[0, len(prompt) - 1:-1].float()
        logits[:, :1] = float("-inf")  # the segment's allowed range [1, V): never PAD
        want = logits.log_softmax(-1).gather(-1, seq[0, len(prompt):, None])[:, 0]
        torch.testing.assert_close(out.logprobs[r, :n], want, rtol=1e-5, atol=1e-5)
    assert out.stopped.any() and not out.stopped.all()  # both kinds of row in the batch
    assert {int(x) for x in out.lengths} != {L}
    greedy = rollout(model, req, top_k=1)
    for r in (0, 5, 11):  # greedy: a padded row samples what it samples alone
        alone = task.rollout_request(task.collate([task.dataset("train")[r]]))
        assert torch.equal(rollout(model, alone, top_k=1).completion_ids[0], greedy.completion_ids[r])


def test_metrics_baseline_and_dotted_path_rewards_by_hand(task):
    items = {"next": ["box open, lamp off", "box open, lamp off", "tap on", "door closed, radio on, tap off"],
             "state": ["box closed, lamp off", "box open, lamp off", "tap off", "door closed, radio on, tap on"]}
    preds = {"text": ["lamp off, box open", "box open, lamp on", "", "door closed, radio on"]}
    m = task.metrics(preds, items)
    assert m["exact_match"].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert m["state_f1"].tolist() == pytest.approx([1.0, 0.5, 0.0, 0.8])  # 2*2/(2+3) = 0.8
    pairs = zip(items["state"], items["next"], strict=True)
    base = task.baselines(task.collate([task.encode_item(s, "wait", t) for s, t in pairs]))
    nb = task.metrics(base["no_change"], items)
    assert nb["exact_match"].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert nb["state_f1"].tolist() == pytest.approx([0.5, 1.0, 0.0, 2 / 3])
    reward = build_reward("toy_text:state_f1_reward+toy_text:exact_match_reward:0.5")
    total, parts = reward(preds, items)
    assert total.tolist() == pytest.approx([1.5, 0.5, 0.0, 0.8])
    assert set(parts) == {"toy_text:state_f1_reward", "toy_text:exact_match_reward"}


def test_tokenizer_and_settings_round_trip_through_meta(task, tmp_path):
    task.save_assets(tmp_path)
    back = toy_text.ToyTextTask.from_meta(task.to_meta(), tmp_path, n_test=8)
    assert back.tokenizer.get_vocab() == task.tokenizer.get_vocab()
    assert back.tokenizer.chat_template == toy_text.CHAT_TEMPLATE and back.n_test == 8
    assert (back.pad_id, back.eos_id, back.eot_id) == (task.pad_id, task.eos_id, task.eot_id)
    for x, y in zip(back.dataset("train")[:32], task.dataset("train")[:32], strict=True):
        assert torch.equal(x["prompt"], y["prompt"]) and torch.equal(x["answer"], y["answer"])
    with pytest.raises(FileNotFoundError, match=r"nowhere/tokenizer: no tokenizer\.json"):
        toy_text.ToyTextTask.from_meta(task.to_meta(), tmp_path / "nowhere")
    with pytest.raises(ValueError, match="max_objects in 1..5"):
        toy_text.ToyTextConfig(max_objects=9)
    with pytest.raises(ValueError, match="lists of states and actions of the same length"):
        task.predict_request(["box open"], ["open box", "wait"])


def test_lora_reference_logprobs_are_the_base_models(task, model):
    """GRPO on the toy task with a LoRA policy: its reference log-probs (adapter disabled) are
    the base model's, on left-padded, early-stopping rows."""
    base = copy.deepcopy(model)
    torch.manual_seed(1)
    policy = lora.apply_lora(copy.deepcopy(model), LoRAConfig(enabled=True, r=4, init_lora_weights=False))
    cfg = GRPOConfig(num_generations=4, prompts_per_step=4, mini_batch_prompts=4, beta=0.05,
                     max_steps=1, device="cpu", eval_steps=0, save_steps=0)
    tr = GRPOTrainer(cfg, task, policy, build_reward("toy_text:state_f1_reward"))
    assert tr.ref_model is None
    c = tr._rollout_chunk(0, 0, 0, [0, 1, 2, 3])
    assert not c.attention_mask.all()
    with torch.no_grad():
        want = sequence_logprobs(base, c.sequences, c.prompt_len, c.segments, attention_mask=c.attention_mask)
    assert torch.equal(c.ref_logprobs, want)
    assert (c.old_logprobs - want)[c.loss_mask].abs().max() > 1e-3  # the policy is not the base
