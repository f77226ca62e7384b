"""The text tokenizer: a byte-level BPE trained with ``tokenizers``, wrapped as a transformers
PreTrainedTokenizerFast with special tokens and a ChatML template; saved and loaded locally."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worldmodels.tasks.text_tokenizer import (
    CHAT_TEMPLATE,
    SPECIAL_TOKENS,
    chat_prompt_ids,
    load_text_tokenizer,
    pad_id,
    save_tokenizer,
    stop_ids,
    train_bpe_tokenizer,
)

CORPUS = ["{'name': 'lamp (ID: 2)', 'uuid': 2, 'properties': {'isOn': True}}",
          'The final answer is: {"modified": [], "removed": [4], "score": {}}',
          "Your task is to boil water. take pot (ID: 3) from sink (ID: 2)"] * 20


@pytest.fixture(scope="module")
def tok():
    return train_bpe_tokenizer(CORPUS, vocab_size=400)


def test_special_tokens_template_and_stops(tok):
    assert [tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3]
    assert pad_id(tok) == 0 and tok.eos_token_id == 1 and stop_ids(tok) == (1, 3)
    assert tok.chat_template == CHAT_TEMPLATE
    ids = chat_prompt_ids(tok, "take pot")
    assert tok.decode(ids) == "<|im_start|>user\ntake pot<|im_end|>\n<|im_start|>assistant\n"
    assert 300 < len(tok) <= 400  # merges were learned, within the requested size
    # digits are split one by one; merges span words unless split_words
    assert len(tok("1234", add_special_tokens=False)["input_ids"]) == 4
    phrase = " take pot (ID: 3) from sink (ID: 2)"
    words = train_bpe_tokenizer(CORPUS, vocab_size=400, split_words=True)
    assert len(words(" boil", add_special_tokens=False)["input_ids"]) == 1  # "Ġboil" as in the corpus
    n_words = len(words(phrase, add_special_tokens=False)["input_ids"])
    n_spans = len(tok(phrase, add_special_tokens=False)["input_ids"])
    assert n_spans <= 6 < 12 <= n_words  # " ta|ke pot (ID: |3|) from sink (ID: |2|)" vs word by word


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_every_string_round_trips(text):
    tok = _TOK
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.unk_token_id is None or tok.unk_token_id not in ids
    assert tok.decode(ids) == text


def test_save_and_load(tok, tmp_path):
    save_tokenizer(tok, tmp_path / "tokenizer")
    save_tokenizer(tok, tmp_path / "tokenizer")  # replaces
    back = load_text_tokenizer(tmp_path / "tokenizer")
    assert back.get_vocab() == tok.get_vocab() and back.chat_template == CHAT_TEMPLATE
    assert chat_prompt_ids(back, "x y") == chat_prompt_ids(tok, "x y") and stop_ids(back) == (1, 3)
    with pytest.raises(FileNotFoundError, match="no tokenizer here"):
        load_text_tokenizer(tmp_path / "missing")


def test_bad_arguments(tok):
    with pytest.raises(ValueError, match=">= 300"):
        train_bpe_tokenizer(CORPUS, vocab_size=100)
    with pytest.raises(ValueError, match="empty corpus"):
        train_bpe_tokenizer(["", ""])
    tok2 = train_bpe_tokenizer(CORPUS, vocab_size=400)
    tok2.chat_template = None
    with pytest.raises(ValueError, match="no chat template"):
        chat_prompt_ids(tok2, "x")


_TOK = train_bpe_tokenizer(CORPUS, vocab_size=400)
