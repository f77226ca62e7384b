"""Data-parallel tokenizer training under torchrun (2 CPU processes, gloo); slow."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import sys, torch
from tokenizers_video import FrameTokenizer, FrameTokenizerConfig, TrainConfig, train
torch.manual_seed(0)
model = FrameTokenizer(FrameTokenizerConfig(image_size=32, block_out_channels=(8, 16),
                                            norm_num_groups=4, fsq_levels=(5, 3),
                                            quantizer=sys.argv[2], vq_codebook_size=64, vq_dim=4,
                                            vq_restart_threshold=0.5, vq_decay=0.5))
g = torch.Generator().manual_seed(0)
data = [torch.rand(3, 32, 32, generator=g) for _ in range(16)]
cfg = TrainConfig(steps=3, batch_size=4, log_every=1, save_every=3, image_every=0, progress=False)
train(model, data, cfg, sys.argv[1], log=lambda s: None)
import torch.distributed as dist
w = model.encoder.conv_in.weight.detach()
t = [torch.zeros_like(w) for _ in range(dist.get_world_size())]
dist.all_gather(t, w.contiguous())
assert torch.equal(t[0], t[1]), "ranks diverged"
if sys.argv[2] == "vq":
    cb = model.quantizer.codebook.contiguous()
    c = [torch.zeros_like(cb) for _ in range(dist.get_world_size())]
    dist.all_gather(c, cb)
    assert torch.equal(c[0], c[1]), "VQ codebooks diverged"
"""


@pytest.mark.slow
@pytest.mark.parametrize("quantizer", ["fsq", "vq"])
def test_torchrun_two_cpu_ranks_stay_in_sync(tmp_path, quantizer):
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = Path(sys.executable).with_name("torchrun")
    res = subprocess.run([str(torchrun), "--nproc_per_node", "2", "--master_port", "29517",
                          str(script), str(tmp_path / "run"), quantizer], env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert [json.loads(ln)["step"] for ln in lines] == [1, 2, 3]  # only rank 0 writes
    assert (tmp_path / "run" / "checkpoint" / "train_state.pt").is_file()
