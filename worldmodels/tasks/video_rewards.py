"""``readout_state``: an RLVR reward on what a planner reads from the frames, not on pixels.

Pixel rewards (MAE, MSE) barely see the robot's small pusher, yet the MPC cost and the
Real2Sim judge depend on where it is (docs/planning.md). This reward applies a trained
:class:`~worldmodels.envs.robot_readout.StateReadout` to every predicted frame and to the true frame and
scores minus their mean absolute difference over the task state (metres; pusher, block and
goal x/y, drawer opening and target)::

    r_t = -(1/8) * sum_d |readout(pred_t)_d - readout(true_t)_d|        per frame, (B,T)

Frames of any float dtype are read in float32 (autocast off); the reward is float32.
It is a per-frame reward, so ``aggregate`` (mean / last / discount) applies, and it combines
with pixel rewards in a spec (``readout_state+mae``). The readout comes from the reward
options::

    wm rlvr video --init runs/wm_skip6_comp --reward readout_state+mae --readout runs/readout
"""

from __future__ import annotations

import torch
from torch import Tensor

from worldmodels.rewards import register_reward, target_frames


def _readout_state_factory(options: dict):
    from worldmodels.envs.robot_readout import StateReadout

    path = options.get("readout")
    if not path:
        raise ValueError("reward 'readout_state' needs a state readout: pass --readout DIR "
                         "(trained by `wm plan readout --out DIR`)")
    readout = StateReadout.load(path)  # FileNotFoundError naming readout.json when absent

    def fn(predictions: Tensor, items: dict, **ctx) -> Tensor:
        target = target_frames(items)
        if predictions.ndim == 4:  # single frame (B,3,H,W) -> (B,1,3,H,W)
            predictions, target = predictions[:, None], target[:, None]
        B, T = predictions.shape[:2]
        readout.to(predictions.device)  # no-op after the first call
        # float32 whatever the frames' dtype, and also inside a bf16 autocast region
        with torch.no_grad(), torch.autocast(predictions.device.type, enabled=False):
            pred = readout(predictions.reshape(B * T, *predictions.shape[2:]).float())   # (B*T,8)
            true = readout(target.reshape(B * T, *target.shape[2:]).float().to(predictions.device))
        return -(pred.float() - true.float()).abs().mean(-1).reshape(B, T)              # (B,T) float32

    return fn


register_reward("readout_state", per_frame=True, factory=True)(_readout_state_factory)
