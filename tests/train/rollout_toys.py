"""A GRPO-shaped rollout request shared by the rollout tests (KV-cache speed paths, recurrent
state): 4 left-padded prompts of lengths 2..7 (pad token 17, masked), each repeated G times
item-major, a generated stretch with stop ids, a forced stretch (the same within a group, as
``task.repeat`` gives) and a second generated stretch."""

import torch

from worldmodels.tasks.base import RolloutRequest, repeat_batch
from worldmodels.train.rollout import Segment


def padded_group_request(G: int, seed: int, vocab: int, first=(8, (3, 7, 11)),
                         second=(4, (31,))) -> RolloutRequest:
    """``first`` / ``second``: (tokens, stop ids) of the two generated stretches."""
    g = torch.Generator().manual_seed(seed)
    lens = (2, 7, 4, 5)
    P = max(lens)
    prompt = torch.full((len(lens), P), 17)
    mask = torch.zeros(len(lens), P, dtype=torch.bool)
    for i, n in enumerate(lens):
        prompt[i, P - n:] = torch.randint(0, vocab, (n,), generator=g)
        mask[i, P - n:] = True
    force = torch.randint(20, 30, (len(lens), 2), generator=g)
    batch = repeat_batch({"prompt": prompt, "mask": mask, "force": force}, G)
    segs = [Segment("generate", first[0], allowed=(0, 20), stop_ids=first[1]),
            Segment("force", 2, tokens=batch["force"]),
            Segment("generate", second[0], allowed=(30, 40), stop_ids=second[1])]
    return RolloutRequest(batch["prompt"], segs, batch["mask"], pad_id=5, group_size=G)
