"""A 2-process gloo (CPU) DDP training step gives the same gradients as one process."""

import os
import socket
import sys
from pathlib import Path

import torch
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tasks"))
from wm_fakes import FakeFrameTokenizer, make_episodes  # noqa: E402

BS, ACCUM = 2, 2  # per-rank micro-batch, accumulation steps


def _task(root):
    from worldmodels.tasks.video import VideoSpec, VideoTask
    from worldmodels.tasks.video_data import ActionCodec

    return VideoTask(FakeFrameTokenizer(), VideoSpec("multi", 1, 2), ActionCodec([-1, -1], [1, 1]),
                     data_root=str(root), cache_dir=str(root / ".cache"))


def _grads(root, rank, world, out):
    from worldmodels.models import build_backbone
    from worldmodels.train.distributed import DistInfo, wrap_model
    from worldmodels.train.mle import forward_backward
    from worldmodels.train.sampler import ResumableBatchSampler

    torch.set_num_threads(1)
    task = _task(root)
    ds = task.dataset("train", with_frames=False, progress=False)
    torch.manual_seed(0)
    model = build_backbone("test", task.vocab_size, 256)
    info = DistInfo(rank=rank, world_size=world, device=torch.device("cpu"))
    ddp = wrap_model(model, info, "ddp")
    sampler = ResumableBatchSampler(len(ds), BS * 2 // world, seed=3, rank=rank, world_size=world)
    batches = [task.collate([ds[i] for i in idx]) for idx, _ in zip(sampler, range(ACCUM), strict=False)]
    res = forward_backward(ddp, task, batches, info.device)
    if rank == 0:
        torch.save({"grads": {n: p.grad.clone() for n, p in model.named_parameters()},
                    "loss_sum": res["loss_sum"]}, out)


def _worker(rank, world, root, out, port):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    from worldmodels.train.distributed import cleanup, init_distributed

    init_distributed("cpu")
    try:
        _grads(root, rank, world, out)
    finally:
        cleanup()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gloo_step_matches_single_process(tmp_path):
    root = make_episodes(tmp_path / "data", n=6, T=8)
    _task(root).dataset("train", progress=False)  # warm the token cache once
    _grads(root, 0, 1, tmp_path / "single.pt")
    mp.spawn(_worker, args=(2, root, tmp_path / "ddp.pt", _free_port()), nprocs=2, join=True)
    single = torch.load(tmp_path / "single.pt", weights_only=True)["grads"]
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)["grads"]
    assert single.keys() == ddp.keys()
    for n in single:
        torch.testing.assert_close(ddp[n], single[n], atol=1e-6, rtol=1e-4, msg=n)
    assert max(g.abs().max() for g in single.values()) > 0
