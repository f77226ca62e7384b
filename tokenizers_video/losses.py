"""Tokenizer losses: a small patch discriminator and hinge-GAN terms.

    d = PatchDiscriminator(channels=32, layers=3)
    d_loss = hinge_d_loss(d(real), d(fake.detach()))
    g_loss = hinge_g_loss(d(fake))
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchDiscriminator(nn.Module):
    """PatchGAN-style discriminator: strided 4x4 convs -> one logit per patch, (N,1,h,w).

    Input frames (N,3,H,W) in [0,1] (scaled to [-1,1] inside).
    """

    def __init__(self, channels: int = 32, layers: int = 3, groups: int = 8):
        super().__init__()
        mods: list[nn.Module] = [nn.Conv2d(3, channels, 4, 2, 1), nn.LeakyReLU(0.2)]
        ch = channels
        for i in range(1, layers):
            nxt = channels * min(2**i, 8)
            stride = 2 if i < layers - 1 else 1
            mods += [nn.Conv2d(ch, nxt, 4, stride, 1), nn.GroupNorm(min(groups, nxt), nxt),
                     nn.LeakyReLU(0.2)]
            ch = nxt
        mods.append(nn.Conv2d(ch, 1, 4, 1, 1))
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1)


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss: mean(relu(1 - D(real))) + mean(relu(1 + D(fake))).

    Computed in float32 even for bf16/fp16 logits (from an autocast region); float32 scalar.
    """
    return F.relu(1 - real_logits.float()).mean() + F.relu(1 + fake_logits.float()).mean()


def hinge_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator hinge loss: -mean(D(fake)), in float32 even for bf16/fp16 logits."""
    return -fake_logits.float().mean()
