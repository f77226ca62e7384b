"""Sizes of the ``rwkv7`` family's presets (torch-free, so config validation stays instant).

Each is chosen near the ``llama`` preset of the same name in non-embedding parameters
(``tests/models/test_rwkv7_family.py`` checks within 10%): ``test`` (32 wide, 2 layers),
``tiny`` (128 wide, 4 layers, heads of 32, channel-mix 576: 1.02M vs llama's 1.05M; CPU),
``small`` (768 wide, 12 layers, heads of 64, channel-mix 3072; GPU).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """hidden_size C, num_hidden_layers, head_dim N, intermediate_size (channel-mix width)."""

    hidden_size: int
    num_hidden_layers: int
    head_dim: int
    intermediate_size: int


PRESETS: dict[str, Preset] = {
    "test": Preset(32, 2, 16, 64),
    "tiny": Preset(128, 4, 32, 576),
    "small": Preset(768, 12, 64, 3072),
}
