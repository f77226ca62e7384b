"""Small world models for the compression tests (not a test module): a toy-text task with a
random tiny RWKV-7 or Llama backbone written as a world-model directory (no training)."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "text"))
import toy_text  # noqa: E402  (registers the "toy_text" task)


def random_rwkv7(vocab: int = 23, seed: int = 0):
    """RWKV-7 preset ``test`` with every weight random (the x070 init zeroes o_proj / value,
    which would hide factorisation errors)."""
    from worldmodels.models import BackboneConfig, make_backbone

    torch.manual_seed(seed)
    m = make_backbone(BackboneConfig(family="rwkv7", preset="test"), vocab)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith(("o_proj.weight", "ffn.value.weight", "ffn.key.weight")):
                p.normal_(0, 0.2)
    return m.eval()


def random_llama(vocab: int = 23, seed: int = 0):
    from worldmodels.models import BackboneConfig, make_backbone

    torch.manual_seed(seed)
    return make_backbone(BackboneConfig(family="llama", preset="test", max_positions=64), vocab).eval()


def world_model_dir(directory, model, n_train: int = 64, n_test: int = 32):
    """``directory`` as a toy-text world model holding ``model``; returns the task."""
    from worldmodels.world_model import export_backbone, write_world_model_meta

    task = toy_text.ToyTextTask(toy_text.build_tokenizer(), n_train=n_train, n_test=n_test)
    write_world_model_meta(directory, task)
    export_backbone(directory, model)
    return task
