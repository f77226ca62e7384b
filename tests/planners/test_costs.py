"""Planning state costs against their closed forms (planners/costs.py)."""

import math

import pytest
import torch

from planners.costs import (
    BEHIND,
    CONTACT_RADIUS,
    GOAL_WEIGHT,
    contact_gated_push_states,
    drawer_cost,
    push_cost,
    state_cost,
)
from worldmodels.envs import robot_scene as S


def push_state(pusher, block, goal):
    s = torch.zeros(8)
    s[0:2], s[2:4], s[4:6] = torch.tensor(pusher), torch.tensor(block), torch.tensor(goal)
    return s


def test_push_cost_is_weighted_distance_plus_shaping():
    block, goal = (0.0, 0.0), (0.3, 0.4)                    # 0.5 m apart, direction (0.6, 0.8)
    behind = (-BEHIND * 0.6, -BEHIND * 0.8)
    at_behind = push_state(behind, block, goal)
    assert push_cost(at_behind).item() == pytest.approx(GOAL_WEIGHT * 0.5, abs=1e-6)
    off = push_state((behind[0] + 0.03, behind[1] - 0.04), block, goal)  # 5 cm from the push point
    assert push_cost(off).item() == pytest.approx(GOAL_WEIGHT * 0.5 + 0.05, abs=1e-6)
    # the weight scales only the distance term
    assert (push_cost(off, 10.0) - push_cost(off, 1.0)).item() == pytest.approx(9 * 0.5, abs=1e-5)


def test_drawer_cost_at_the_hook_is_the_weighted_opening_error():
    opening, goal = 0.05, 0.15                                # opening: pusher must sit in the hook gap
    bar_y = S.DRAWER_FRONT_Y - opening - S.HANDLE_OFFSET
    s = torch.zeros(8)
    s[0:2] = torch.tensor([S.CABINET_X - 0.01, bar_y + S.HANDLE_OFFSET / 2])
    s[6], s[7] = opening, goal
    for w in (1.0, GOAL_WEIGHT):
        assert drawer_cost(s, w).item() == pytest.approx(w * 0.10, abs=1e-5)


def test_state_cost_is_mean_over_horizon_plus_last():
    states = torch.stack([push_state((0.0, 0.0), (0.0, 0.0), (0.0, d)) for d in (0.1, 0.2, 0.4)])
    per_step = push_cost(states)                                                   # (3,)
    got = state_cost("push", states[None], goal_weight=GOAL_WEIGHT)                # (1,)
    assert got.item() == pytest.approx(per_step.mean().item() + per_step[-1].item(), abs=1e-6)
    assert not math.isclose(state_cost("push", states[None], 1.0).item(), got.item())


def test_plan_config_rejects_a_non_positive_goal_weight():
    from planners.mpc import PlanRunConfig

    with pytest.raises(ValueError, match="goal_weight"):
        PlanRunConfig(goal_weight=0.0)


def gated(start, *steps):
    """start (pusher, block, goal); steps [(pusher, block, goal)] -> gated block per step (N, 2)."""
    st = torch.stack([push_state(*s) for s in steps])[None]                      # (1, N, 8)
    out = contact_gated_push_states(st, push_state(*start))
    return out[0]


def test_contact_gate_drops_block_and_goal_motion_without_contact():
    start = ((0.2, 0.2), (0.0, 0.0), (-0.1, 0.0))
    out = gated(start, ((0.2, 0.1), (-0.05, 0.0), (-0.05, 0.0)))    # block drifts to the goal, pusher far
    assert out[0, 2:4].tolist() == pytest.approx([0.0, 0.0])
    assert out[0, 4:6].tolist() == pytest.approx([-0.1, 0.0])        # the goal stays where it was
    assert out[0, 0:2].tolist() == pytest.approx([0.2, 0.1])         # the pusher is the model's


def test_contact_gate_keeps_block_motion_along_the_pushers_motion_only():
    start = ((-0.08, 0.0), (0.0, 0.0), (0.2, 0.0))
    pushed = gated(start, ((-0.02, 0.0), (0.03, 0.01), (0.2, 0.0)))
    # the component along the pusher's motion (+x) counts, the sideways 1 cm does not
    assert pushed[0, 2:4].tolist() == pytest.approx([0.03, 0.0], abs=1e-6)
    pulled = gated(start, ((-0.02, 0.0), (-0.03, 0.0), (0.2, 0.0)))  # towards the pusher: impossible
    assert pulled[0, 2:4].tolist() == pytest.approx([0.0, 0.0])


def test_contact_gate_sees_contact_between_frames_and_accumulates():
    # the pusher sweeps past the block within CONTACT_RADIUS between two frames (ends far away)
    y = CONTACT_RADIUS - 0.01
    start = ((-0.2, y), (0.0, 0.0), (0.0, -0.2))
    out = gated(start, ((0.2, y), (0.02, 0.0), (0.0, -0.2)), ((0.2, 0.3), (0.02, -0.05), (0.0, -0.2)))
    assert out[0, 2:4].tolist() == pytest.approx([0.02, 0.0], abs=1e-6)
    assert out[1, 2:4].tolist() == pytest.approx([0.02, 0.0], abs=1e-6)   # then no contact: held


class DriftingModel:
    """Predicts the pusher moving with the action and the block drifting 5 cm/step to the goal
    without contact; frames carry the 8-d state in their first pixels (read by `pixel_readout`)."""

    def predict(self, ctx, acts, n_samples=1):
        s = ctx[:, -1, 0, 0, :8]                                                # (S, 8)
        states = []
        for t in range(acts.shape[1]):
            s = s.clone()
            s[:, 0:2] += 0.1 * acts[:, t]
            to_goal = s[:, 4:6] - s[:, 2:4]
            s[:, 2:4] += 0.05 * to_goal / to_goal.norm(dim=-1, keepdim=True)
            states.append(s)
        frames = torch.zeros(ctx.shape[0], n_samples, len(states), *ctx.shape[2:])
        frames[..., 0, 0, :8] = torch.stack(states, 1)[:, None]
        return frames


def pixel_readout(frames):
    return frames[:, 0, 0, :8]


def test_world_model_cost_with_the_gate_ignores_drift_the_pusher_did_not_cause():
    from planners.costs import world_model_cost

    start = push_state((0.25, 0.25), (0.0, 0.0), (-0.2, 0.0))
    ctx = torch.zeros(1, 3, 16, 16)
    ctx[0, 0, 0, :8] = start
    still = torch.zeros(1, 2, 2)                                                # (S, N, A): no motion
    kw = dict(task="push", readout=pixel_readout)
    drift = world_model_cost(DriftingModel(), ctx, torch.zeros(0, 2), "state", **kw)(still)
    gated_cost = world_model_cost(DriftingModel(), ctx, torch.zeros(0, 2), "state", contact_gate=True, **kw)(still)
    no_move = state_cost("push", start.expand(1, 2, 8))
    assert gated_cost.item() == pytest.approx(no_move.item(), abs=1e-5)
    assert drift.item() < no_move.item() - 0.5                                  # ungated: drift pays


def test_contact_gate_keeps_a_nan_reading_without_contact_out():
    """A NaN block reading while the pusher is far changes nothing (selected, not 0 * NaN)."""
    start = ((0.2, 0.2), (0.0, 0.0), (-0.1, 0.0))
    out = gated(start, ((0.2, 0.1), (math.nan, math.nan), (-0.05, 0.0)),
                ((0.2, 0.05), (0.01, 0.0), (-0.05, 0.0)))
    assert out[:, 2:4].flatten().tolist() == pytest.approx([0.0] * 4)


def test_pixel_image_cost_of_low_precision_frames_is_float32():
    """bf16 predictions and goal image: the pixel cost equals the float64 closed form of the
    same rounded values (a bf16 mean would round it to 3 significant digits)."""
    from planners.costs import image_cost

    g = torch.Generator().manual_seed(0)
    goal = torch.rand(3, 16, 16, generator=g).to(torch.bfloat16)
    pred = (goal.float() + 0.01 * torch.randn(2, 3, 3, 16, 16, generator=g)).clamp(0, 1).to(torch.bfloat16)
    c = ((pred.double() - goal.double()) ** 2).mean(dim=(2, 3, 4))               # (S, N)
    want = c.mean(-1) + c[:, -1]
    got = image_cost(pred, goal)
    assert got.dtype == torch.float32 and torch.allclose(got.double(), want, rtol=1e-5, atol=0)
