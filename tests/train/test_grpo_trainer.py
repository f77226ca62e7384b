"""GRPO trainer on a stand-in task (modality-free): smoke, beta=0, invalid rewards, resume,
2-process gloo == 1 process.

    OMP_NUM_THREADS=1 .venv/bin/pytest -q tests/train/test_grpo_trainer.py
"""

import os
import shutil

import pytest
import torch
import torch.multiprocessing as mp
from transformers import LlamaConfig, LlamaForCausalLM

from worldmodels.tasks.base import RolloutRequest, Segment, Task
from worldmodels.train.grpo import GRPOTrainer
from worldmodels.train.grpo_config import GRPOConfig, grpo_preset

V = 24


class ToyTask(Task):
    """Prompt: 3 tokens in [0,8). Completion: 3 generated tokens in [8,16), 2 forced tokens in
    [16,20), 3 more generated. The 'ground truth' of generated token i is 8 + (3*i + p[0]//7) % 8
    (nearly prompt-independent, so a tiny model learns it in a few dozen GRPO steps)."""

    name = "toy"
    vocab_size = V

    def __init__(self, n=32, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.prompts = torch.randint(0, 8, (n, 3), generator=g)
        self.force = torch.randint(16, 20, (n, 2), generator=g)

    def dataset(self, split):
        tgt = torch.stack([8 + (3 * i + self.prompts[:, 0] // 7) % 8 for i in range(6)], 1)
        return [{"prompt": p, "force": f, "target": t}
                for p, f, t in zip(self.prompts, self.force, tgt, strict=True)]

    def rollout_request(self, batch):
        return RolloutRequest(batch["prompt"], [Segment("generate", 3, allowed=(8, 16)),
                                                Segment("force", 2, tokens=batch["force"]),
                                                Segment("generate", 3, allowed=(8, 16))])

    def decode(self, batch, output):
        ids = output.completion_ids
        return torch.cat([ids[:, :3], ids[:, 5:]], 1)  # (B, 6)

    def reward_items(self, batch):
        return {"target": batch["target"]}


class ToyReward:
    """reward = fraction of generated tokens equal to the target; parts {match, neg_l1}.
    ``nan_every``: every k-th sample gets a NaN (to exercise invalid-reward exclusion)."""

    def __init__(self, nan_every=0):
        self.nan_every = nan_every

    def __call__(self, predictions, items):
        match = (predictions == items["target"]).float().mean(1)
        l1 = -(predictions - items["target"]).abs().float().mean(1)
        total = match.clone()
        if self.nan_every:
            total[:: self.nan_every] = float("nan")
        return total, {"match": match, "neg_l1": l1}

    @staticmethod
    def valid_mask(total):
        return torch.isfinite(total)


def tiny_model(seed=0):
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32,
                      tie_word_embeddings=False)
    return LlamaForCausalLM(cfg)


def cfg(**kw):
    base = dict(num_generations=4, prompts_per_step=4, mini_batch_prompts=2, learning_rate=3e-3,
                beta=0.01, max_steps=3, device="cpu", eval_steps=0, save_steps=0)
    base.update(kw)
    return GRPOConfig(**base)


def params(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def test_smoke_reward_improves(tmp_path):
    """A few dozen steps on the toy task raise the reward; metrics and logs are complete."""
    evals = []

    def eval_fn(model):
        evals.append(1)
        return {"dummy": 1.0}

    tr = GRPOTrainer(cfg(max_steps=40, prompts_per_step=8, mini_batch_prompts=8, num_generations=8,
                         learning_rate=1e-2, eval_steps=20, sample_table_steps=20),
                     ToyTask(), tiny_model(), ToyReward(), out_dir=tmp_path, eval_fn=eval_fn)
    recs = tr.train(progress=False)
    steps = [r for r in recs if "reward" in r]
    assert len(steps) == 40 and len(evals) == 3  # step 0, 20, 40
    for key in ("reward", "reward_std", "reward_std_batch", "reward/match", "reward/neg_l1", "frac_reward_zero_std",
                "kl", "clip_ratio", "entropy", "grad_norm", "lr", "gen_tokens_per_s",
                "invalid_rewards"):
        assert key in steps[-1], key
    first = sum(r["reward"] for r in steps[:5]) / 5
    last = sum(r["reward"] for r in steps[-5:]) / 5
    assert last > first + 0.1, (first, last)
    assert steps[-1]["kl"] > 0 and steps[-1]["invalid_rewards"] == 0
    assert (tmp_path / "metrics.jsonl").read_text().count("\n") == 41
    assert (tmp_path / "samples.jsonl").exists()
    assert (tmp_path / "checkpoints" / "step_00000040" / "model").is_dir()


def test_beta_zero_creates_no_reference_model(monkeypatch):
    import copy as copy_mod

    calls = []
    real = copy_mod.deepcopy

    def counting(x, *a, **k):  # count copies of modules (a reference model would be one)
        if isinstance(x, torch.nn.Module):
            calls.append(type(x).__name__)
        return real(x, *a, **k)

    monkeypatch.setattr(copy_mod, "deepcopy", counting)
    tr = GRPOTrainer(cfg(beta=0.0, max_steps=1), ToyTask(), tiny_model(), ToyReward())
    assert tr.ref_model is None and not calls
    m = tr.train_step()
    assert m["kl"] == 0.0
    tr2 = GRPOTrainer(cfg(beta=0.1), ToyTask(), tiny_model(), ToyReward())
    assert calls == ["LlamaForCausalLM"]  # the check above would have seen a copy
    assert tr2.ref_model is not None and not any(p.requires_grad for p in tr2.ref_model.parameters())


def test_invalid_rewards_are_excluded_not_fatal():
    tr = GRPOTrainer(cfg(), ToyTask(), tiny_model(), ToyReward(nan_every=3))
    m = tr.train_step()
    assert m["invalid_rewards"] == 6  # 16 samples, every 3rd: 0,3,...,15 -> 6
    assert all(torch.isfinite(torch.tensor(v)) for k, v in m.items() if k != "step")
    for c in tr._last_chunks:  # invalid rows carry no loss
        assert not c.loss_mask[~c.valid.to(c.loss_mask.device)].any()
        assert (c.advantages[~c.valid] == 0).all()
    assert all(torch.isfinite(p).all() for p in tr.model.parameters())


def test_forced_tokens_get_no_loss():
    tr = GRPOTrainer(cfg(), ToyTask(), tiny_model(), ToyReward())
    tr.train_step()
    for c in tr._last_chunks:
        assert not c.loss_mask[:, 3:5].any() and c.loss_mask[:, :3].all()


@pytest.mark.parametrize("beta", [0.0, 0.05])
def test_resume_is_exact(tmp_path, beta):
    c = cfg(beta=beta, max_steps=4, num_iterations=2)
    a = GRPOTrainer(c, ToyTask(), tiny_model(), ToyReward(), out_dir=tmp_path / "a")
    a.train(max_steps=2, progress=False)
    shutil.copytree(tmp_path / "a" / "checkpoints", tmp_path / "b" / "checkpoints")
    a.train(progress=False)
    b = GRPOTrainer(c, ToyTask(), tiny_model(), ToyReward(), out_dir=tmp_path / "b")
    assert b.resume(tmp_path / "b") and b.step == 2
    b.train(progress=False)
    assert b.step == 4 and b.optimizer_steps == a.optimizer_steps == 16
    assert torch.equal(params(a.model), params(b.model))
    assert not GRPOTrainer(c, ToyTask(), tiny_model(), ToyReward()).resume(tmp_path / "none")


def _ddp_worker(rank, world, init_file, out_file):
    import torch.distributed as td

    torch.set_num_threads(1)
    td.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        tr = GRPOTrainer(cfg(rollout_chunk_prompts=1, scale_rewards="batch"), ToyTask(),
                         tiny_model(), ToyReward(nan_every=5))
        m = tr.train_step()
        if rank == 0:
            torch.save({"params": params(tr.model), "metrics": m}, out_file)
    finally:
        td.destroy_process_group()


def test_two_process_gloo_step_equals_single_process(tmp_path):
    single = GRPOTrainer(cfg(rollout_chunk_prompts=1, scale_rewards="batch"), ToyTask(),
                         tiny_model(), ToyReward(nan_every=5))
    m1 = single.train_step()
    out = tmp_path / "ddp.pt"
    mp.start_processes(_ddp_worker, args=(2, str(tmp_path / "init"), str(out)), nprocs=2,
                       start_method="spawn")
    res = torch.load(out, weights_only=True)
    assert single.optimizer_steps == 2
    torch.testing.assert_close(res["params"], params(single.model), atol=2e-6, rtol=1e-5)
    for k in ("reward", "reward_std", "reward_std_batch", "invalid_rewards", "kl", "clip_ratio", "frac_reward_zero_std"):
        assert res["metrics"][k] == pytest.approx(m1[k], rel=1e-5, abs=1e-7), k
    moved = (params(single.model) - params(tiny_model())).abs().max()
    assert moved > 1e-4  # the step really changed the weights


def test_config_validation_and_presets():
    with pytest.raises(ValueError, match="mini_batch_prompts"):
        GRPOConfig(prompts_per_step=10, mini_batch_prompts=4)
    with pytest.raises(ValueError, match="num_generations"):
        GRPOConfig(num_generations=1)
    with pytest.raises(ValueError, match="dual_clip"):
        GRPOConfig(dual_clip=0.5)
    d = GRPOConfig()
    assert (d.num_generations, d.prompts_per_step, d.mini_batch_prompts, d.num_iterations,
            d.learning_rate, d.epsilon, d.dual_clip, d.beta, d.loss_type, d.scale_rewards) == (
        16, 128, 32, 1, 5e-5, 0.2, 3.0, 0.001, "token_mean", "group")
    assert grpo_preset("tiny").prompts_per_step < d.prompts_per_step
    with pytest.raises(ValueError, match="unknown GRPO preset"):
        grpo_preset("huge")


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def test_logit_gradients_zero_at_forced_positions():
    """Through the real model: the GRPO loss puts no gradient on the logits that predict forced
    tokens (nor on prompt positions), and some on the generated ones."""
    from worldmodels.train.grpo_loss import grpo_loss
    from worldmodels.train.rollout import rollout, sequence_logprobs

    task, model = ToyTask(), tiny_model()
    batch = task.repeat(task.collate(task.dataset("train")[:2]), 3)
    req = task.rollout_request(batch)
    prompt, segs = req.prompt_ids, req.segments
    out = rollout(model, req, generator=torch.Generator().manual_seed(0))
    kept = {}

    def hook(mod, inp, output):
        output.retain_grad()
        kept["logits"] = output

    h = model.lm_head.register_forward_hook(hook)
    logp = sequence_logprobs(model, out.sequences, prompt.shape[1], segs)
    h.remove()
    loss, _ = grpo_loss(logp, out.logprobs, torch.randn(6), out.loss_mask,
                        ref_logprobs=out.logprobs - 0.1, beta=0.1)
    loss.backward()
    g = kept["logits"].grad  # (B, L+1, V): position j predicts completion token j
    assert g.shape[1] == out.completion_ids.shape[1] + 1
    per_pos = g[:, :-1].abs().sum(-1)  # (B, L)
    assert (per_pos[:, 3:5] == 0).all()  # the two forced tokens
    assert (g[:, -1] == 0).all()  # the extra last position predicts nothing
    assert (per_pos[:, :3] > 0).all() and (per_pos[:, 5:] > 0).all()


def test_nan_reference_logprobs_at_forced_positions_change_nothing(monkeypatch):
    """A reference whose log-probs are NaN/-inf at forced tokens (positions without loss) and
    NaN rewards: the step's metrics stay finite and the update equals the one with finite values."""
    from worldmodels.train import grpo as grpo_mod
    from worldmodels.train.rollout import segment_masks

    orig = grpo_mod.sequence_logprobs
    runs = []
    for poison in (False, True):
        tr = GRPOTrainer(cfg(beta=0.05), ToyTask(), tiny_model(), ToyReward(nan_every=3))

        def poisoned(model, sequences, prompt_len, segments, _tr=tr, _poison=poison, **kw):
            lp = orig(model, sequences, prompt_len, segments, **kw)
            if _poison and model is _tr.ref_model:
                keep = segment_masks(sequences[:, prompt_len:], segments)
                bad = torch.full_like(lp, float("nan"))
                bad[::2] = -float("inf")
                lp = torch.where(keep, lp, bad)
            return lp

        monkeypatch.setattr(grpo_mod, "sequence_logprobs", poisoned)
        m = tr.train_step()
        if poison:  # the poison really reached the chunks' reference log-probs
            assert any(torch.isnan(c.ref_logprobs).any() for c in tr._last_chunks)
        runs.append((m, params(tr.model)))
    (m0, p0), (m1, p1) = runs
    for k in ("kl", "clip_ratio", "ratio_mean", "reward", "grad_norm", "invalid_rewards"):
        assert torch.isfinite(torch.tensor(m1[k])) and m1[k] == pytest.approx(m0[k], rel=1e-6, abs=1e-12), k
    assert torch.isfinite(p1).all() and torch.equal(p1, p0)
