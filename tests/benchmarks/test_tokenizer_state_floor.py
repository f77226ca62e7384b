"""benchmarks/tokenizer_state_floor.py: the read-out floor a tokenizer leaves a world model."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from tokenizer_state_floor import state_floor  # noqa: E402


class IdentityCompressive:
    """A perfect compressive tokenizer: ids are the frames themselves."""

    kind, context_tokens = "compressive", 0

    def encode(self, context, future):
        self.context = context
        return context, future

    def decode(self, ctx_ids, fut_ids):
        return ctx_ids, fut_ids


class ContextOnly(IdentityCompressive):
    """A tokenizer whose future tokens carry nothing: every future decodes to the context."""

    def decode(self, ctx_ids, fut_ids):
        return ctx_ids, ctx_ids[:, None].expand_as(fut_ids)


def centroid_readout(frames):
    """A crude state readout: (N,3,H,W) -> (N,8), the red-channel centroid in every slot."""
    w = frames[:, 0] - frames[:, 1:].mean(1)                                   # (N,H,W)
    w = w.clamp(min=0) + 1e-6
    ys, xs = torch.meshgrid(torch.linspace(-0.3, 0.3, w.shape[1]), torch.linspace(-0.3, 0.3, w.shape[2]),
                            indexing="ij")
    x, y = (w * xs).sum((1, 2)) / w.sum((1, 2)), (w * ys).sum((1, 2)) / w.sum((1, 2))
    return torch.stack([x, y] * 4, dim=1)


def test_a_perfect_tokenizer_has_the_readouts_error_and_a_blind_one_more():
    perfect = state_floor(IdentityCompressive(), centroid_readout, scenes=2, future=3, frame_skip=3)
    assert perfect["real"] == perfect["reconstructed"]
    assert len(perfect["real"]["pusher_cm_by_step"]) == 3
    blind = state_floor(ContextOnly(), centroid_readout, scenes=2, future=3, frame_skip=3)
    assert blind["real"] == perfect["real"]  # same seeded scenes
    assert blind["reconstructed"]["pusher_cm"] != perfect["reconstructed"]["pusher_cm"]
