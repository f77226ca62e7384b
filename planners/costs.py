"""Planning costs for the robot world and the glue that turns a world model into ``cost_fn``.

State costs read the task-state vector (``worldmodels.envs.robot.TASK_STATE_NAMES``):
``0,1`` pusher, ``2,3`` block, ``4,5`` goal, ``6`` drawer opening, ``7`` drawer goal. They
combine the distance to the goal with a shaping term that brings the pusher to where it can
act (behind the block; into the handle's hook to open, under the bar to close), because a
short horizon sees no progress otherwise. Image costs compare predicted frames with a goal
image (pixel MSE or LPIPS). All costs are per sequence, lower is better, over a horizon:
``mean_t c_t + c_T``::

    cost_fn = world_model_cost(model, ctx (k,3,H,W), past (k-1,A), "state", task="push", readout=ro)
    cost_fn(action_seqs (S,N,A)) -> (S,)
"""

from __future__ import annotations

import torch

from worldmodels.envs import robot_scene as S

BEHIND = S.BLOCK_HALF + S.PUSHER_RADIUS + 0.005   # pusher-to-block-centre offset for a push
GAP_Y = S.HANDLE_OFFSET / 2                        # handle-hook gap centre, in front of the drawer front
HOOK_ENTRY_X = S.CABINET_X - S.HANDLE_HALF_LEN - 0.03


GOAL_WEIGHT = 10.0  # weight of the distance to the goal against the shaping term


def push_cost(s: torch.Tensor, goal_weight: float = GOAL_WEIGHT) -> torch.Tensor:
    """(..., 8) -> (...): goal_weight·|block−goal| + |pusher − point behind the block|."""
    pusher, block, goal = s[..., 0:2], s[..., 2:4], s[..., 4:6]
    d = goal - block
    dist = d.norm(dim=-1)
    behind = block - BEHIND * d / dist.clamp_min(1e-6)[..., None]
    return goal_weight * dist + (pusher - behind).norm(dim=-1)


def drawer_cost(s: torch.Tensor, goal_weight: float = GOAL_WEIGHT) -> torch.Tensor:
    """(..., 8) -> (...): goal_weight·|opening − goal| + |pusher − where it must be to move the handle|."""
    pusher, opening, goal = s[..., 0:2], s[..., 6], s[..., 7]
    bar_y = S.DRAWER_FRONT_Y - opening - S.HANDLE_OFFSET          # handle bar centre line
    gap = torch.stack([torch.full_like(bar_y, S.CABINET_X - 0.01), bar_y + GAP_Y], -1)
    entry = torch.stack([torch.full_like(bar_y, HOOK_ENTRY_X), bar_y + GAP_Y], -1)
    in_band = (pusher[..., 0] < S.CABINET_X - S.HANDLE_HALF_LEN) | (pusher[..., 1] > bar_y)
    open_target = torch.where(in_band[..., None], gap, entry)     # enter the hook from the left
    close_target = torch.stack([torch.full_like(bar_y, S.CABINET_X), bar_y - 0.03], -1)
    target = torch.where((goal > opening)[..., None], open_target, close_target)
    return goal_weight * (opening - goal).abs() + (pusher - target).norm(dim=-1)


def state_cost(task: str, states: torch.Tensor, goal_weight: float = GOAL_WEIGHT) -> torch.Tensor:
    """Task states over a horizon (S, N, 8) -> (S,) = mean_t c_t + c_T.

    ``goal_weight`` trades progress to the goal against the shaping term. A lower weight makes
    the planner rely more on where the pusher goes and less on predicted object motion (meant
    for world models that move objects towards the goal too readily; on push with
    `wm_skip6_act`, 1 instead of 10 did not turn failures into successes: docs/planning.md).
    """
    fn = push_cost if task == "push" else drawer_cost
    c = fn(states.float(), goal_weight)           # (S, N)
    return c.mean(-1) + c[..., -1]


def image_cost(pred: torch.Tensor, goal: torch.Tensor, kind: str = "pixel", lpips=None) -> torch.Tensor:
    """Predicted frames (S, N, 3, H, W) vs goal image (3, H, W) -> (S,) = mean_t c_t + c_T."""
    Sn, N = pred.shape[:2]
    if kind == "pixel":
        c = ((pred - goal) ** 2).mean(dim=(2, 3, 4))                       # (S, N)
    elif kind == "lpips":
        if lpips is None:
            raise ValueError("image_cost(kind='lpips') needs lpips=worldmodels.metrics.lpips_fn()")
        flat = pred.reshape(Sn * N, *pred.shape[2:])
        c = lpips(flat, goal.expand_as(flat)).reshape(Sn, N)
    else:
        raise ValueError(f"unknown image cost {kind!r}; use 'pixel' or 'lpips'")
    return c.mean(-1) + c[:, -1]


def world_model_cost(model, context: torch.Tensor, past_actions: torch.Tensor, kind: str, *,
                     task: str | None = None, readout=None, goal_image=None, lpips=None,
                     n_samples: int = 1, goal_weight: float = GOAL_WEIGHT):
    """Build ``cost_fn`` from anything with ``predict`` (a world model or `SimModel`).

    context (k,3,H,W) in [0,1]; past_actions (k-1,A) between the context frames.
    kind "state" needs ``task`` and ``readout`` (frames (M,3,H,W) -> states (M,8)); "pixel" and
    "lpips" need ``goal_image`` (3,H,W).
    """
    if kind == "state" and (task is None or readout is None):
        raise ValueError("a 'state' cost needs task= and readout=")
    if kind in ("pixel", "lpips") and goal_image is None:
        raise ValueError(f"a {kind!r} cost needs goal_image=")

    @torch.no_grad()
    def cost_fn(seqs: torch.Tensor) -> torch.Tensor:
        Sn = seqs.shape[0]
        ctx = context.unsqueeze(0).expand(Sn, *context.shape)                       # (S,k,3,H,W)
        acts = torch.cat([past_actions.unsqueeze(0).expand(Sn, *past_actions.shape).to(seqs), seqs], 1)
        pred = model.predict(ctx, acts, n_samples=n_samples)                        # (S,n,N,3,H,W)
        n, N = pred.shape[1], pred.shape[2]
        if kind == "state":
            st = readout(pred.reshape(Sn * n * N, *pred.shape[3:])).reshape(Sn * n, N, -1)
            c = state_cost(task, st, goal_weight)
        else:
            c = image_cost(pred.reshape(Sn * n, N, *pred.shape[3:]), goal_image, kind, lpips)
        return c.reshape(Sn, n).mean(1)

    return cost_fn
