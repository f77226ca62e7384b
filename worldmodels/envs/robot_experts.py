"""Scripted experts and the random policy for the robot world.

    rng = np.random.default_rng(0)
    a = expert_action(env, noise=0.0, rng=rng)   # (2,) float32 in [-1,1]
    a = random_action(env, rng)

The experts read only ``env.task_state()`` and ``env.task`` (so they can also be run on a
state predicted by a readout). ``noise`` is the std of Gaussian noise added to the expert's
action before clipping: 0 is the competent expert, ~0.3 sloppy, >= 1 mostly noise.

``hold`` is the number of control steps each action will be held for (a policy acting at a
world model's frame rate, e.g. 6 for a 3.3 Hz model): the expert then aims to reach its
waypoint over ``hold`` steps instead of one, so a held action does not overshoot.
"""

from __future__ import annotations

import numpy as np

from worldmodels.envs import robot_scene as S

_STEP = S.MAX_SPEED * S.TIMESTEP * S.SUBSTEPS  # metres moved per control step at |a| = 1


# Push-task waypoints stay in this box, clear of the drawer handle (bar's lower face y >= 0.06).
_PUSH_AREA_LO = np.array([-0.26, -0.26])
_PUSH_AREA_HI = np.array([0.26, 0.03])
_ORBIT = 0.085  # radius of the path around the block (m)


def _towards(p: np.ndarray, target: np.ndarray, hold: int = 1, gain: float = 0.8) -> np.ndarray:
    """Action that moves the pusher from ``p`` to ``target`` in about ``hold`` steps (clipped)."""
    return np.clip((target - p) / (_STEP * hold) * gain, -1.0, 1.0)


def push_expert(s: np.ndarray, hold: int = 1) -> np.ndarray:
    """Orbit the block to its far side from the goal, then push it through the goal centre."""
    p, b, g = s[0:2], s[2:4], s[4:6]
    d = g - b
    dist = float(np.linalg.norm(d))
    if dist < 0.015:
        return np.zeros(2)
    u = d / dist
    perp = np.array([-u[1], u[0]])
    rel = p - b
    along, lat = float(rel @ u), float(rel @ perp)
    if along < -0.03 and abs(lat) < 0.015:  # behind and aligned: push towards the goal
        direction = g - p
        direction = direction / (np.linalg.norm(direction) + 1e-9)
        speed = float(np.clip(dist / 0.06, 0.3, 1.0) / hold)
        return np.clip(direction * speed - perp * lat / (_STEP * hold) * 0.8, -1.0, 1.0)
    theta = np.arctan2(rel[1], rel[0])
    behind = np.arctan2(-u[1], -u[0])
    dtheta = (behind - theta + np.pi) % (2 * np.pi) - np.pi
    if abs(dtheta) < 0.35 and along < -0.03:  # near the far side: close in on the contact point
        target = b - u * (S.BLOCK_HALF + S.PUSHER_RADIUS + 0.01)
    else:  # walk around the block on a circle of radius _ORBIT
        # a held action covers hold x more ground, so it may take a longer arc (fewer decisions)
        ang = theta + np.sign(dtheta) * min(abs(dtheta), 0.6 if hold == 1 else 1.0)
        target = b + _ORBIT * np.array([np.cos(ang), np.sin(ang)])
    return _towards(p, np.clip(target, _PUSH_AREA_LO, _PUSH_AREA_HI), hold)


def drawer_expert(s: np.ndarray, hold: int = 1) -> np.ndarray:
    """Hook the handle from the left and pull (open), or push the handle bar (close)."""
    p, opening, goal = s[0:2], float(s[6]), float(s[7])
    if abs(opening - goal) < 0.01:
        return np.zeros(2)
    hx = S.CABINET_X
    front_y = S.DRAWER_FRONT_Y - opening
    bar_y = front_y - S.HANDLE_OFFSET
    gap_y = 0.5 * (front_y + bar_y + S.HANDLE_HALF_THICK)
    in_gap = hx - S.HANDLE_HALF_LEN - 0.02 < p[0] < hx + 0.045 and bar_y < p[1] < front_y
    below = p[1] < bar_y - 0.035
    if goal > opening:  # open: enter the gap from the left, then pull towards -y
        column = hx - S.HANDLE_HALF_LEN - 0.055
        entering = column - 0.03 < p[0] < hx and abs(p[1] - gap_y) < 0.012
        if in_gap or entering:
            if p[0] < hx - 0.03:
                return _towards(p, np.array([hx, gap_y]), hold)
            return _towards(p, np.array([hx, gap_y - 0.05]), hold)
        if p[0] > column + 0.02:
            if not below:
                return _towards(p, np.array([p[0], bar_y - 0.06]), hold)
            return _towards(p, np.array([column, p[1]]), hold)
        return _towards(p, np.array([column, gap_y]), hold)
    # close: push the bar (or, from inside the gap, the drawer front) towards +y
    if in_gap:
        return _towards(p, np.array([hx, p[1] + 0.05]), hold)
    contact_y = bar_y - S.HANDLE_HALF_THICK - S.PUSHER_RADIUS - 0.004
    if not below:
        side = hx - 0.13 if p[0] < hx else hx + 0.13
        if abs(p[0] - hx) < 0.08:
            return _towards(p, np.array([side, p[1]]), hold)
        return _towards(p, np.array([p[0], bar_y - 0.06]), hold)
    if abs(p[0] - hx) > 0.015:
        return _towards(p, np.array([hx, min(p[1], contact_y)]), hold)
    return _towards(p, np.array([hx, p[1] + 0.05]), hold)


def expert_action(env, noise: float, rng: np.random.Generator, hold: int = 1) -> np.ndarray:
    """The scripted expert's action for ``env``'s task plus Gaussian ``noise``, clipped; ``hold``:
    control steps the action will be held for (module doc)."""
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    if hold < 1:
        raise ValueError(f"hold must be >= 1 control step, got {hold}")
    s = env.task_state().astype(np.float64)
    a = push_expert(s, hold) if env.family == "push" else drawer_expert(s, hold)
    if noise > 0:
        a = a + noise * rng.standard_normal(a.shape)
    return np.clip(a, env.action_low, env.action_high).astype(np.float32)


def poke_action(env, rng: np.random.Generator, hold: int = 1) -> np.ndarray:
    """Push-task data policy that drives the pusher through the block from wherever it is.

    It aims at a point near the block centre (2 cm Gaussian offset) and overshoots it by up to
    8 cm, so contacts come from every side and the block moves where it is pushed, often away
    from the goal. The expert only ever pushes from behind, towards the goal; a world model
    trained on it alone learns "the block moves to the goal", which a planner then exploits
    (docs/planning.md). Drawer tasks get a uniform random action."""
    if env.family != "push":
        return random_action(env, rng)
    s = env.task_state().astype(np.float64)
    p, b = s[0:2], s[2:4]
    target = b + rng.normal(0.0, 0.02, 2)
    heading = (target - p) / (np.linalg.norm(target - p) + 1e-9)
    target = target + heading * rng.uniform(0.0, 0.08)
    return _towards(p, np.clip(target, _PUSH_AREA_LO, _PUSH_AREA_HI), hold).astype(np.float32)


def random_action(env, rng: np.random.Generator) -> np.ndarray:
    """Uniform action in the env's action box."""
    return rng.uniform(env.action_low, env.action_high).astype(np.float32)
