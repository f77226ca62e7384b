"""benchmarks/grpo_rollout_speed.py: the ``generate`` baseline does the engine's work.

The benchmark's ratio is only fair when both paths sample the same answers. With a vocab mask
(a text task's ``Segment.allowed``, passed to ``generate`` as ``suppress_tokens``) and stop ids,
from the same generator state, the baseline must return the tokens, lengths and log-probs of
the engine with ``generate``'s sampler (the benchmark's default ``--sampler multinomial``).
"""

import sys
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from worldmodels.tasks.base import RolloutRequest
from worldmodels.train.rollout import Segment, rollout

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from grpo_rollout_speed import generate_rollout  # noqa: E402

V = 48


def test_generate_baseline_with_a_vocab_mask_samples_the_engines_answers():
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=V, hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=4,
                                         num_key_value_heads=2, pad_token_id=0)).eval()
    g = torch.Generator().manual_seed(1)
    prompt = torch.randint(8, V, (3, 6), generator=g).repeat_interleave(4, 0)
    mask = torch.ones_like(prompt, dtype=torch.bool)
    mask[4:8, :2] = False  # one left-padded prompt
    prompt[~mask] = 0
    seg = Segment("generate", 16, allowed=(8, V), stop_ids=(9, 10, 11, 12))
    req = RolloutRequest(prompt, [seg], mask, pad_id=0, group_size=4)
    ours = rollout(model, req, generator=torch.Generator().manual_seed(7), sampler="multinomial")
    theirs = generate_rollout(model, req, generator=torch.Generator().manual_seed(7))
    real = ours.loss_mask
    assert ours.lengths.unique().numel() >= 3  # mixed lengths: some rows stop early
    assert int(ours.completion_ids[real].min()) >= 8  # the mask held
    assert torch.equal(theirs.loss_mask, real)
    assert torch.equal(theirs.completion_ids[real], ours.completion_ids[real])
    torch.testing.assert_close(theirs.logprobs, ours.logprobs, atol=1e-5, rtol=0)
