"""Speed of the ST-LPIPS reward (``worldmodels.metrics.STLPIPSMetric``) on CPU or GPU.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/stlpips_speed.py --threads 1
    .venv/bin/python benchmarks/stlpips_speed.py --device cuda --size 64 256

Frames per second of ``metric(pred, target)`` (no grad) for ``--batch`` frame pairs of
``--size`` x ``--size`` pixels, median of ``--repeats`` timed calls after one warm-up call,
for each net (alex, vgg). ``--group G``: each target frame repeated G times, as in a GRPO
batch of G samples per prompt (each distinct frame goes through the trunk once); the default
1 has all frames distinct. Needs the ``perceptual`` extra (stlpips-pytorch).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch


def bench(net: str, size: int, batch: int, repeats: int, device: str, group: int = 1) -> dict:
    from worldmodels import metrics as M

    t0 = time.perf_counter()
    metric = M.stlpips_fn(net, device)
    build_s = time.perf_counter() - t0
    g = torch.Generator().manual_seed(0)
    y = torch.rand(-(-batch // group), 3, size, size, generator=g).repeat_interleave(group, 0)[:batch]
    x = (y + 0.05 * torch.randn(y.shape, generator=g)).clamp(0, 1).to(device)
    y = y.to(device)
    times = []
    with torch.no_grad():
        metric(x, y)  # warm-up
        for _ in range(repeats):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t = time.perf_counter()
            metric(x, y)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
    s = statistics.median(times)
    return {"net": net, "size": size, "batch": batch, "group": group, "device": device,
            "threads": torch.get_num_threads(),
            "median_s": s, "frames_per_s": batch / s, "build_s": build_s}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nets", nargs="+", default=["alex", "vgg"], choices=["alex", "vgg"])
    p.add_argument("--size", type=int, nargs="+", default=[64])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--group", type=int, default=1, help="each target repeated this many times")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    for net in args.nets:
        for size in args.size:
            print(json.dumps(bench(net, size, args.batch, args.repeats, args.device, args.group)), flush=True)


if __name__ == "__main__":
    main()
