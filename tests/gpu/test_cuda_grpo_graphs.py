"""GRPO with ``rollout_cuda_graphs`` on CUDA: the same rollouts and the same update as the eager
decode step (float32 tiny Llama, fixed seeds), so the knob is speed only.

    python -m pytest -q -m gpu tests/gpu/test_cuda_grpo_graphs.py
"""

import sys
from pathlib import Path

import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from grpo_toys import StopReward, StopTask, tiny_model  # noqa: E402

from worldmodels.train.grpo import GRPOTrainer  # noqa: E402
from worldmodels.train.grpo_config import GRPOConfig  # noqa: E402


def run(graphs: bool, steps: int = 2):
    cfg = GRPOConfig(num_generations=4, prompts_per_step=4, mini_batch_prompts=4, learning_rate=1e-3,
                     beta=0.05, max_steps=steps, device="cuda", eval_steps=0, save_steps=0,
                     rollout_cuda_graphs=graphs)
    tr = GRPOTrainer(cfg, StopTask(), tiny_model(), StopReward())
    seqs, rewards = [], []
    for _ in range(steps):
        m = tr.train_step()
        seqs.append(torch.cat([c.sequences for c in tr._last_chunks]).cpu())
        rewards.append(m["reward"])
    return seqs, rewards, {n: p.detach().cpu() for n, p in tr.model.named_parameters()}


def test_cuda_graph_rollouts_give_the_eager_samples_and_update():
    eager = run(False)
    graphs = run(True)
    for a, b in zip(eager[0], graphs[0], strict=True):
        assert torch.equal(a, b)
    assert eager[1] == pytest.approx(graphs[1], abs=1e-6)
    for n, p in eager[2].items():
        torch.testing.assert_close(graphs[2][n], p, atol=1e-5, rtol=1e-4, msg=n)
