"""`wm import rlvr-world`: their tokenizer (the shared sample their code saved), a tiny random
transformer with their key names and vocabulary layout (no PAD), their RT-1 action ranges ->
our world model: their exact sequence ids, log-probs equal to plain transformers, predict,
`wm eval video` and one RLVR step."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from worldmodels.cli import app
from worldmodels.episodes import save_episode

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"  # as tests/conftest.py

V = 1000  # the shared tokenizer's codes: FSQ [8,5,5,5]
BOS, EOS, VOCAB = V + 256, V + 257, V + 258  # their layout: visual, 256 action bins, BOS, EOS
N, A, K = 256, 13, 4  # tokens per frame (16x16), RT-1 action dims, context frames
runner = CliRunner()


def their_llama_dir(d, vocab=VOCAB, **over):
    """A tiny LlamaForCausalLM directory as their code leaves it: a hand-written llama_small-style
    config.json (transformers-4 era keys) + model.safetensors with standard Llama key names."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 32,
           "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
           "num_key_value_heads": 4, "vocab_size": vocab, "bos_token_id": vocab - 2,
           "eos_token_id": vocab - 1, "rms_norm_eps": 1e-6, "max_position_embeddings": 8192,
           "tie_word_embeddings": False, "hidden_act": "silu", "rope_theta": 10000.0,
           "initializer_range": 0.02, "attention_bias": False, "mlp_bias": False,
           "pretraining_tp": 1, "rope_scaling": None, "use_cache": True, "torch_dtype": "float32",
           "transformers_version": "4.46.3", **over}
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**{k: v for k, v in cfg.items()
                                            if k not in ("architectures", "transformers_version")}))
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(cfg, indent=2))
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    assert "model.layers.0.self_attn.q_proj.weight" in state and "lm_head.weight" in state
    save_file(state, str(d / "model.safetensors"), metadata={"format": "pt"})
    return d


def ranges(shared_data):
    r = np.array(json.loads((shared_data / "interop/rt1_action_ranges.json").read_text())["ranges"])
    return r[:, 0], r[:, 1]


def bin_action(lo, hi, k):
    """An action value inside bin k of 256 (its centre), so floor(...) = k by hand."""
    return lo + (k + 0.5) / 256 * (hi - lo)


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared sample data not found at {SHARED_DATA}")
    root = tmp_path_factory.mktemp("rlvr_import")
    lo, hi = ranges(SHARED_DATA)
    data = root / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    bins = {}
    for e in range(4):  # 8 frames of 64x64 noise; actions at known bins
        k = (7 * np.arange(8)[:, None] + 19 * np.arange(A)[None] + 31 * e) % 256  # (8,13)
        act = bin_action(lo, hi, k)
        act[0, 0], act[1, 1] = lo[0] - 1.0, hi[1] + 1.0  # outside the range -> bins 0 and 255
        k[0, 0], k[1, 1] = 0, 255
        bins[e] = k
        save_episode(data / f"ep_{e:03d}.npz", rng.integers(0, 256, (8, 64, 64, 3), dtype=np.uint8),
                     act.astype(np.float32))
    (data / "meta.json").write_text(json.dumps({"test_every": 2}))
    llama = their_llama_dir(root / "their_llama")
    r = runner.invoke(app, ["import", "rlvr-world", "--tokenizer",
                            str(SHARED_DATA / "interop/rlvr_world_cnnfsq_tiny"),
                            "--transformer", str(llama), "--actions",
                            str(SHARED_DATA / "interop/rt1_action_ranges.json"), "--layout", "single",
                            "--data", str(data), "--out", str(root / "wm")])
    assert r.exit_code == 0, r.output
    assert "vocab 1258 = 1000 visual + 256 action bins + BOS 1256 + EOS 1257" in r.output
    return {"root": root, "wm": root / "wm", "llama": llama, "data": data, "bins": bins,
            "cache": root / "cache"}


def load(imported):
    from worldmodels.world_model import WorldModel

    return WorldModel.from_pretrained(imported["wm"], device="cpu", cache_dir=str(imported["cache"]))


def test_written_directory(imported):
    meta = json.loads((imported["wm"] / "worldmodel.json").read_text())
    lay = meta["layout"]
    assert (lay["visual_vocab"], lay["action_offset"], lay["bos_id"], lay["eos_id"]) == (V, V, BOS, EOS)
    assert lay["pad_id"] == EOS and lay["vocab_size"] == VOCAB  # no PAD row: pads with EOS
    assert lay["spec"]["mode"] == "single" and lay["spec"]["context_frames"] == K
    assert meta["imported_from"]["format"] == "rlvr-world"
    # the backbone files are theirs, byte for byte
    for name in ("config.json", "model.safetensors"):
        assert (imported["wm"] / "backbone" / name).read_bytes() == (imported["llama"] / name).read_bytes()


def test_single_step_sequence_is_theirs_by_hand(imported):
    """[f0 a0][f1 a1][f2 a2][f3 a3] BOS f4 EOS with a_t = V + bin, bins placed by hand."""
    wm = load(imported)
    task = wm.task
    ds = task.dataset("train", progress=False)  # train episodes 1 and 3 (test_every 2)
    item = ds[0]  # episode 1, frames 0..4
    assert item["frame_ids"].shape == (5, N) and item["action_ids"].shape == (5, A)
    tok = task.tokenizer
    frames = item["frames"][None]  # (1,5,3,64,64) in [0,1]
    f = tok.encode(frames).reshape(5, N)
    assert torch.equal(item["frame_ids"], f)
    k = torch.from_numpy(imported["bins"][1][:5])
    parts = []
    for t in range(K):
        parts += [f[t], V + k[t]]
    want = torch.cat(parts + [torch.tensor([BOS]), f[K], torch.tensor([EOS])])
    lm = task.lm_batch({kk: v[None] for kk, v in item.items()})
    assert lm["input_ids"].shape == (1, K * (N + A) + N + 2) == (1, 1334)
    assert torch.equal(lm["input_ids"][0], want)
    labels = lm["labels"][0]
    assert (labels[: K * (N + A)] == -100).all() and torch.equal(labels[K * (N + A):], want[K * (N + A):])
    # episode 0 holds the out-of-range actions: below min -> bin 0, above max -> bin 255
    first = imported["bins"][0][:2].tolist()
    assert first[0][0] == 0 and first[1][1] == 255
    codec_bins = task.codec.encode(torch.from_numpy(np.load(imported["data"] / "ep_000.npz")["action"][:2]))
    assert codec_bins.tolist() == first


def test_logprobs_equal_plain_transformers(imported):
    from transformers import LlamaForCausalLM

    from worldmodels.tasks.base import Segment
    from worldmodels.train.mle import token_loss_sum
    from worldmodels.train.rollout import sequence_logprobs

    wm = load(imported)
    ds = wm.task.dataset("train", progress=False)
    batch = wm.task.collate([ds[0], ds[1]])
    lm = wm.task.lm_batch(batch)
    ids = lm["input_ids"]  # (2,1334), their ids
    plain = LlamaForCausalLM.from_pretrained(imported["llama"], local_files_only=True).eval()
    with torch.no_grad():
        ref = torch.log_softmax(plain(input_ids=ids).logits.float(), -1)[:, :-1].gather(
            -1, ids[:, 1:, None])[..., 0]  # (2,1333): log p(token t+1 | ..t)
        P = K * (N + A) + 1  # prompt up to and including BOS
        ours = sequence_logprobs(wm.model, ids, P, [Segment("generate", N + 1)])  # f4 + EOS
        loss, count = token_loss_sum(wm.model, lm)  # the MLE path: BOS, f4, EOS
    torch.testing.assert_close(ours, ref[:, P - 1:], atol=1e-5, rtol=1e-5)
    assert count == 2 * (N + 2)
    torch.testing.assert_close(loss, -ref[:, P - 2:].sum(), atol=1e-3, rtol=1e-5)


def test_predict_and_eval_video(imported):
    wm = load(imported)
    ds = wm.task.dataset("train", progress=False)
    item = ds[0]
    torch.manual_seed(0)
    pred = wm.predict(item["frames"][None, :K], item["actions"][None, :K + 1], n_samples=2)
    assert pred.shape == (1, 2, 2, 3, 64, 64) and 0 <= pred.min() and pred.max() <= 1
    out = imported["root"] / "eval"
    r = runner.invoke(app, ["eval", "video", "--model", str(imported["wm"]), "--data",
                            str(imported["data"]), "--out", str(out), "--future", "1",
                            "--samples", "1", "--clips", "2", "--gifs", "0", "--lpips", "none",
                            "--batch-size", "2", "--device", "cpu"],
                       env={"WM_CACHE_DIR": str(imported["cache"])})
    assert r.exit_code == 0, r.output
    res = json.loads((out / "eval.json").read_text())
    assert res["clips"] == 2 and res["future_frames"] == 1
    assert np.isfinite(res["single"]["mse"]["mean"])


def test_one_rlvr_step(imported, tmp_path):
    from worldmodels.evaluate import EvalConfig
    from worldmodels.pipelines import RLVRConfig, run_rlvr
    from worldmodels.tasks.video_config import VideoTaskOverrides
    from worldmodels.train.grpo_config import GRPOConfig
    from worldmodels.world_model import WorldModel

    cfg = RLVRConfig(init=str(imported["wm"]), out=str(tmp_path / "rlvr"), reward="mae",
                     task=VideoTaskOverrides(root=str(imported["data"]), cache_dir=str(imported["cache"])),
                     grpo=GRPOConfig(num_generations=2, prompts_per_step=1, mini_batch_prompts=1,
                                     learning_rate=1e-2, beta=0.0, max_steps=1, device="cpu",
                                     eval_steps=0, save_steps=0, sample_table_steps=0),
                     eval=EvalConfig(items=0))
    run_rlvr(cfg, progress=False)
    after = WorldModel.from_pretrained(tmp_path / "rlvr", device="cpu", cache_dir=str(imported["cache"]))
    assert after.task.pad_id == EOS and after.task.vocab_size == VOCAB
    assert after.model.get_input_embeddings().weight.shape[0] == VOCAB
    before = load(imported).model.state_dict()
    changed = [k for k, v in after.model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed  # the step updated the imported weights


@pytest.mark.parametrize("vocab, match", [
    (9008, "compressive tokenizer"),                 # their multi-step model's vocabulary
    (VOCAB + 1, "vocab_size 1259, but the tokenizer's layout has 1258 ids"),
])
def test_transformer_vocab_must_be_theirs(shared_data, tmp_path, vocab, match):
    llama = their_llama_dir(tmp_path / "llama", vocab=vocab)
    r = runner.invoke(app, ["import", "rlvr-world", "--tokenizer",
                            str(shared_data / "interop/rlvr_world_cnnfsq_tiny"), "--transformer",
                            str(llama), "--actions", str(shared_data / "interop/rt1_action_ranges.json"),
                            "--out", str(tmp_path / "wm")])
    assert r.exit_code == 2 and match in r.output and str(llama / "config.json") in r.output
    assert not (tmp_path / "wm").exists()


def test_bad_inputs_exit_with_one_line(shared_data, tmp_path):
    tok = str(shared_data / "interop/rlvr_world_cnnfsq_tiny")
    acts = str(shared_data / "interop/rt1_action_ranges.json")
    llama = their_llama_dir(tmp_path / "llama", bos_token_id=5)
    bad = tmp_path / "ranges.json"
    bad.write_text(json.dumps({"ranges": [[0, 1], [2, 1]]}))
    cases = [
        (["--transformer", str(llama), "--actions", acts], "bos_token_id 5, expected 1256"),
        (["--transformer", str(llama), "--actions", str(bad)], f"--actions {bad}: dimension(s) [1]"),
        (["--transformer", str(llama), "--actions", acts, "--layout", "both"], "--layout must be"),
    ]
    for extra, match in cases:
        r = runner.invoke(app, ["import", "rlvr-world", "--tokenizer", tok, "--out",
                                str(tmp_path / "wm"), *extra])
        assert r.exit_code == 2 and match in r.output, r.output
        assert "Traceback" not in r.output
    (tmp_path / "wm").mkdir()
    (tmp_path / "wm" / "worldmodel.json").write_text("{}")
    r = runner.invoke(app, ["import", "rlvr-world", "--tokenizer", tok, "--transformer",
                            str(their_llama_dir(tmp_path / "ok")), "--actions", acts,
                            "--out", str(tmp_path / "wm")])
    assert r.exit_code == 2 and "already holds a world model" in r.output


def test_action_range_formats(tmp_path):
    from worldmodels.commands.import_ import read_action_ranges

    (tmp_path / "a.json").write_text(json.dumps({"low": [-1, 0], "high": [1, 2]}))
    (tmp_path / "b.json").write_text(json.dumps([[-1, 1], [0, 2]]))
    torch.save(torch.tensor([[-1.0, 0.0, 5.0], [1.0, 2.0, 6.0]]), tmp_path / "c.pth")  # (2, A)
    for name in ("a.json", "b.json"):
        c = read_action_ranges(tmp_path / name)
        assert c.low.tolist() == [-1, 0] and c.high.tolist() == [1, 2]
    c = read_action_ranges(tmp_path / "c.pth")
    assert c.low.tolist() == [-1, 0, 5] and c.high.tolist() == [1, 2, 6]
    # their rule by hand: floor(clip((a - lo) / (hi - lo + 1e-8), 0, 1) * 256), at most 255
    assert c.encode(torch.tensor([[-1.0, 0.51, 6.0]])).tolist() == [[0, 65, 255]]  # 0.255 * 256


def test_multi_step_layout_with_their_per_frame_tokenizer(imported, tmp_path):
    """--layout multi: [d1 a1][d2 a2] d3 (d1 given), the same ids; labels on d2, d3 only."""
    from worldmodels.world_model import WorldModel

    r = runner.invoke(app, ["import", "rlvr-world", "--tokenizer",
                            str(SHARED_DATA / "interop/rlvr_world_cnnfsq_tiny"), "--transformer",
                            str(imported["llama"]), "--actions",
                            str(SHARED_DATA / "interop/rt1_action_ranges.json"), "--layout", "multi",
                            "--future-frames", "2", "--data", str(imported["data"]),
                            "--out", str(tmp_path / "wm")])
    assert r.exit_code == 0, r.output
    wm = WorldModel.from_pretrained(tmp_path / "wm", device="cpu", cache_dir=str(imported["cache"]))
    assert (wm.task.spec.mode, wm.task.spec.context_frames, wm.task.pad_id) == ("multi", 1, EOS)
    item = wm.task.dataset("train", progress=False)[0]
    f, k = item["frame_ids"], torch.from_numpy(imported["bins"][1][:2])
    lm = wm.task.lm_batch({kk: v[None] for kk, v in item.items()})
    want = torch.cat([f[0], V + k[0], f[1], V + k[1], f[2]])
    assert torch.equal(lm["input_ids"][0], want)
    labels = lm["labels"][0]
    keep = labels != -100
    assert torch.equal(labels[keep], torch.cat([f[1], f[2]]))
    assert keep.nonzero()[0].item() == N + A  # d1 and its action are given
