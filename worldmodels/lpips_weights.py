"""LPIPS networks built offline: the `lpips` package plus a locally cached ImageNet backbone.

The `lpips` pip package ships its calibrated linear layers (``lpips/weights/v0.1/<net>.pth``)
but takes the backbone (VGG16 / AlexNet / SqueezeNet 1.1) from torchvision, which downloads
ImageNet weights on first use. These machines are offline, so this module:

1. looks for torchvision's file in the torch hub cache, ``torch.hub.get_dir()/checkpoints/``
   (``$TORCH_HOME/hub/checkpoints`` when ``TORCH_HOME`` is set, else ``~/.cache/torch/hub/...``);
2. builds ``lpips.LPIPS(net=..., pretrained=False, pnet_rand=True)`` (random trunk, so nothing
   is downloaded) and loads both the package's calibrated linear layers and the backbone state
   dict itself with ``torch.load(weights_only=True)``, checking every key and shape (lpips'
   own load of the linear layers is ``strict=False``);
3. raises :class:`LPIPSWeightsMissing` (one message: the exact path and how to provide it)
   when the file is absent. It never falls back to random backbone weights.

Provide the weights on a machine with internet, then copy the file::

    python -c "import torchvision; torchvision.models.vgg16(weights='IMAGENET1K_V1')"
    scp ~/.cache/torch/hub/checkpoints/vgg16-397923af.pth offline-host:~/.cache/torch/hub/checkpoints/

Usage::

    from worldmodels.lpips_weights import load_lpips
    net = load_lpips("vgg", device="cpu")      # lpips.LPIPS, eval mode, frozen, cached
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from pathlib import Path

import torch

# torchvision's ImageNet checkpoints used by the three LPIPS backbones.
BACKBONE_FILES: dict[str, str] = {
    "vgg": "vgg16-397923af.pth",
    "alex": "alexnet-owt-7be5be79.pth",
    "squeeze": "squeezenet1_1-b8a52dc0.pth",
}
# Smallest H and W each backbone accepts (its strides/pools leave no pixel below this).
MIN_SIZE: dict[str, int] = {"vgg": 16, "alex": 31, "squeeze": 17}
_TV_BUILDERS = {"vgg": "vgg16", "alex": "alexnet", "squeeze": "squeezenet1_1"}
_ALIASES = {"vgg16": "vgg", "alexnet": "alex", "squeezenet": "squeeze"}

_CACHE: dict[tuple[str, str, str, int], torch.nn.Module] = {}
_LOCK = threading.Lock()


class LPIPSWeightsMissing(FileNotFoundError):
    """The ImageNet backbone checkpoint LPIPS needs is not in the local torch hub cache."""


def canonical_net(net: str) -> str:
    """Map ``vgg``/``vgg16``, ``alex``/``alexnet``, ``squeeze``/``squeezenet`` to the lpips name."""
    name = _ALIASES.get(str(net).lower(), str(net).lower())
    if name not in BACKBONE_FILES:
        raise ValueError(f"unknown LPIPS network {net!r}; expected one of {sorted(BACKBONE_FILES)}")
    return name


def backbone_path(net: str = "vgg") -> Path:
    """Where torchvision's checkpoint for ``net`` must be: ``torch.hub.get_dir()/checkpoints/<file>``.

    ``torch.hub.get_dir()`` reads ``$TORCH_HOME`` at call time, so setting it redirects the lookup.
    """
    return Path(torch.hub.get_dir()) / "checkpoints" / BACKBONE_FILES[canonical_net(net)]


def _missing_message(net: str, path: Path) -> str:
    builder = _TV_BUILDERS[net]
    return (
        f"LPIPS({net}) needs the ImageNet backbone weights {path.name}, expected at {path} "
        f"(torch hub cache: $TORCH_HOME/hub/checkpoints, TORCH_HOME={os.environ.get('TORCH_HOME', 'unset')}). "
        f"Nothing is downloaded automatically. To provide it: on a machine with internet run "
        f"`python -c \"import torchvision; torchvision.models.{builder}(weights='DEFAULT')\"` and copy "
        f"~/.cache/torch/hub/checkpoints/{path.name} to {path} (or point TORCH_HOME at a folder whose "
        f"hub/checkpoints/ holds it). Without it use a reward/metric that needs no weights (mae, mse, psnr, ssim)."
    )


def require_backbone(net: str = "vgg") -> Path:
    """Return the backbone checkpoint path, or raise :class:`LPIPSWeightsMissing` naming it."""
    net = canonical_net(net)
    path = backbone_path(net)
    if not path.is_file():
        raise LPIPSWeightsMissing(_missing_message(net, path))
    return path


def _load_backbone(model: torch.nn.Module, net: str, path: Path) -> None:
    """Copy torchvision ``features.*`` tensors into lpips' ``net.slice<k>.*`` modules.

    lpips keeps torchvision's feature indices as module names inside each slice, so
    ``net.slice2.5.weight`` is ``features.5.weight`` (SqueezeNet: ``features.3.squeeze.weight``).
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt / truncated / not a state dict
        raise LPIPSWeightsMissing(
            f"could not read LPIPS backbone weights {path}: {exc}. Replace the file with torchvision's "
            f"{path.name} (see worldmodels/lpips_weights.py for how to obtain it)."
        ) from exc
    if not isinstance(state, dict):
        raise LPIPSWeightsMissing(f"{path} is not a state dict (got {type(state).__name__}); replace it.")
    target = model.net.state_dict()
    mapped, problems = {}, []
    for key, tensor in target.items():
        src = "features." + key.split(".", 1)[1]  # drop "slice<k>."
        if src not in state:
            problems.append(f"missing {src}")
        elif tuple(state[src].shape) != tuple(tensor.shape):
            problems.append(f"{src} has shape {tuple(state[src].shape)}, expected {tuple(tensor.shape)}")
        else:
            mapped[key] = state[src]
    if problems:
        raise LPIPSWeightsMissing(
            f"{path} does not match torchvision's {_TV_BUILDERS[net]} features ({len(problems)} problems, "
            f"first: {problems[:3]}); replace it with the original {path.name}."
        )
    model.net.load_state_dict(mapped, strict=True)


def linear_path(net: str = "vgg") -> Path:
    """The calibrated linear layers shipped inside the ``lpips`` package (``weights/v0.1/<net>.pth``)."""
    import lpips

    return Path(lpips.__file__).parent / "weights" / "v0.1" / f"{canonical_net(net)}.pth"


def _load_linear(model: torch.nn.Module, path: Path) -> None:
    """Load lpips' calibrated ``lin<k>.model.1.weight`` layers from ``path``, strictly.

    ``lpips.LPIPS(pretrained=True)`` loads them itself with ``strict=False``, which would leave a
    layer absent from the file at random init; so the model is built with ``pretrained=False``
    and this checks every ``lin<k>.*`` key and shape first.
    """
    if not path.is_file():
        raise LPIPSWeightsMissing(f"{path}: lpips' calibrated linear layers are missing; reinstall "
                                  f"the lpips package (pip install --force-reinstall lpips)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise LPIPSWeightsMissing(f"could not read LPIPS linear layers {path}: {exc}") from exc
    expected = {k: v for k, v in model.state_dict().items() if re.match(r"lin\d+\.", k)}
    problems = [f"missing {k}" for k in expected if k not in state]
    problems += [f"unexpected {k}" for k in state if k not in expected]
    problems += [f"{k} has shape {tuple(state[k].shape)}, expected {tuple(v.shape)}"
                 for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if problems:
        raise LPIPSWeightsMissing(f"{path} does not match LPIPS' linear layers ({len(problems)} problems, "
                                  f"first: {problems[:5]}); reinstall the lpips package.")
    model.load_state_dict(state, strict=False)  # every lin key checked above; the rest is the trunk


def load_lpips(net: str = "vgg", device: str | torch.device = "cpu") -> torch.nn.Module:
    """Build (once per net, device and weights file) a frozen ``lpips.LPIPS`` in eval mode.

    Raises :class:`LPIPSWeightsMissing` when the backbone file is absent or unreadable.
    The returned module expects inputs in [-1, 1] and returns (N,1,1,1) spatial means;
    its parameters are frozen but it stays differentiable w.r.t. its inputs.
    """
    net = canonical_net(net)
    path = require_backbone(net)
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:  # "cuda" and "cuda:0" share one module
        device = torch.device("cuda", torch.cuda.current_device())
    key = (net, str(device), str(path.resolve()), path.stat().st_mtime_ns)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        import lpips  # heavy (torchvision); imported only when LPIPS is used

        with warnings.catch_warnings():  # torchvision's "pretrained is deprecated" notices
            warnings.simplefilter("ignore")
            model = lpips.LPIPS(net=net, pretrained=False, pnet_rand=True, verbose=False)
        _load_linear(model, linear_path(net))
        _load_backbone(model, net, path)
        model = model.eval().requires_grad_(False).to(device)
        _CACHE[key] = model
        return model


def clear_cache() -> None:
    """Forget built LPIPS modules (tests that swap TORCH_HOME)."""
    with _LOCK:
        _CACHE.clear()
