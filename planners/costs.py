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
# Pusher-centre to block-centre distance below which the pusher can touch the block: the
# block's half-diagonal + the pusher radius + 1 cm of slack for read-out error.
CONTACT_RADIUS = S.BLOCK_HALF * 2 ** 0.5 + S.PUSHER_RADIUS + 0.01


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


def _segment_point_distance(a: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Distance from points x to segments a->b: (..., 2) -> (...)."""
    ab = b - a
    t = ((x - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-12)
    return (x - (a + t.clamp(0, 1)[..., None] * ab)).norm(dim=-1)


def contact_gated_push_states(states: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
    """Keep only physically possible block motion in predicted push states.

    states (S, N, 8) read out of predicted frames; start (8,) or (S, 8) read out of the
    frame the predictions start from. A learned model can move the block (or the goal disc)
    without contact, typically towards the goal as in its expert training data, and a planner
    then exploits that drift.
    Here the goal stays where ``start`` has it, and each predicted block step counts only
    when the pusher's path over that step passes within `CONTACT_RADIUS` of the block, and
    only its component along the pusher's own motion (a pusher only pushes; the path, not
    the end points, because one predicted step covers up to 15 cm at frame_skip 6). Returns
    states with the block and goal replaced, (S, N, 8).
    """
    start = start.to(states).expand(states.shape[0], states.shape[-1])              # (S, 8)
    out = states.clone()
    out[..., 4:6] = start[:, None, 4:6]
    p_prev, b_raw_prev = start[:, 0:2], start[:, 2:4]
    b_eff = b_raw_prev.clone()
    for t in range(states.shape[1]):
        p, b_raw = states[:, t, 0:2], states[:, t, 2:4]
        dist = _segment_point_distance(p_prev, p, b_eff)
        heading = p - p_prev                                    # a pusher pushes where it goes
        heading = heading / heading.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        step = ((b_raw - b_raw_prev) * heading).sum(-1).clamp_min(0)           # (S,)
        # select, not multiply by the 0/1 contact mask: a NaN reading without contact stays out
        b_eff = torch.where((dist < CONTACT_RADIUS)[:, None], b_eff + step[:, None] * heading, b_eff)
        out[:, t, 2:4] = b_eff
        p_prev, b_raw_prev = p, b_raw
    return out


def image_cost(pred: torch.Tensor, goal: torch.Tensor, kind: str = "pixel", lpips=None) -> torch.Tensor:
    """Predicted frames (S, N, 3, H, W) vs goal image (3, H, W) -> (S,) = mean_t c_t + c_T.

    Computed in float32 (float64 stays) whatever the frames' dtype, so bf16/fp16 predictions
    do not round candidates' costs together.
    """
    Sn, N = pred.shape[:2]
    if kind == "pixel":
        dt = torch.promote_types(pred.dtype, torch.float32)
        c = ((pred.to(dt) - goal.to(pred.device, dt)) ** 2).mean(dim=(2, 3, 4))  # (S, N)
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
                     n_samples: int = 1, goal_weight: float = GOAL_WEIGHT,
                     contact_gate: bool = False):
    """Build ``cost_fn`` from anything with ``predict`` (a world model or `SimModel`).

    context (k,3,H,W) in [0,1]; past_actions (k-1,A) between the context frames.
    kind "state" needs ``task`` and ``readout`` (frames (M,3,H,W) -> states (M,8)); "pixel" and
    "lpips" need ``goal_image`` (3,H,W). ``contact_gate`` (push "state" cost only) keeps the
    goal fixed and counts only block motion the pusher could cause
    (`contact_gated_push_states`).
    """
    if kind == "state" and (task is None or readout is None):
        raise ValueError("a 'state' cost needs task= and readout=")
    if kind in ("pixel", "lpips") and goal_image is None:
        raise ValueError(f"a {kind!r} cost needs goal_image=")
    gate = contact_gate and kind == "state" and task == "push"
    start = readout(context[-1:]).reshape(-1).float() if gate else None          # (8,)

    @torch.no_grad()
    def cost_fn(seqs: torch.Tensor) -> torch.Tensor:
        Sn = seqs.shape[0]
        ctx = context.unsqueeze(0).expand(Sn, *context.shape)                       # (S,k,3,H,W)
        acts = torch.cat([past_actions.unsqueeze(0).expand(Sn, *past_actions.shape).to(seqs), seqs], 1)
        pred = model.predict(ctx, acts, n_samples=n_samples)                        # (S,n,N,3,H,W)
        n, N = pred.shape[1], pred.shape[2]
        if kind == "state":
            st = readout(pred.reshape(Sn * n * N, *pred.shape[3:])).reshape(Sn * n, N, -1)
            if gate:
                st = contact_gated_push_states(st.float(), start)
            c = state_cost(task, st, goal_weight)
        else:
            c = image_cost(pred.reshape(Sn * n, N, *pred.shape[3:]), goal_image, kind, lpips)
        return c.reshape(Sn, n).mean(1)

    return cost_fn
