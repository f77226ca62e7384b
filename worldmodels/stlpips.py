"""Shift-tolerant LPIPS (ST-LPIPS) networks, loaded offline from the ``stlpips-pytorch`` package.

ST-LPIPS (Ghildyal & Liu, "Shift-tolerant Perceptual Similarity Metric", ECCV 2022) is LPIPS
(Zhang et al., CVPR 2018) with an anti-aliased trunk (stride-1 first conv, BlurPool with
reflection padding before every downsampling) trained end to end on BAPPS, so a one-pixel
shift of an image costs far less than noise of the same MSE. The distance, for inputs in
[-1, 1] scaled by LPIPS' ``ScalingLayer``, is

    d(x, y) = sum_l mean_{h,w} w_l . (f_l(x) / |f_l(x)| - f_l(y) / |f_l(y)|)^2

over the trunk's layers l (unit-normalised channels, learned 1x1 weights ``w_l``).

Unlike the ``lpips`` package (:mod:`worldmodels.lpips_weights`), which takes its trunk from
torchvision's ImageNet checkpoints, ``stlpips-pytorch`` 0.0.2 ships the *complete* trained
networks: ``stlpips_pytorch/weights/vST0.0/{alex,vgg}_shift_tolerant.pth`` (9.9 MB, 59 MB) hold
the trunk (``net.slice*``), the BlurPool filters, the scaling layer and the calibrated linear
layers (``lin*``). The shift-tolerant trunks are built by the package's own code
(``invariant_networks``), never by torchvision with ``pretrained=True``, so nothing is
downloaded. This module:

1. imports the package lazily; ``stlpips_pytorch`` imports ``IPython.embed`` and
   ``torchsummary.summary`` at module import and uses neither for the metric, so when those
   packages are absent a stub stands in *during that import only* (removed afterwards);
2. builds ``stlpips.LPIPS(net, variant="shift_tolerant", pretrained=False)`` (nothing loaded)
   and loads the package's weight file itself with ``torch.load(weights_only=True)``, checking
   every key and shape (the package's own load is ``strict=False``, which would leave a
   missing tensor at random init);
3. raises :class:`STLPIPSUnavailable` (one message, naming the extra to install or the file)
   when the package or a weight file is missing. It is never replaced by ``lpips`` or by a
   randomly initialised network.

Install: ``pip install -e ".[perceptual]"`` (the ``perceptual`` extra of pyproject.toml).

Usage::

    from worldmodels.stlpips import load_stlpips
    net = load_stlpips("alex", device="cpu")  # frozen, eval mode, cached; inputs in [-1, 1]
    d = net(x * 2 - 1, y * 2 - 1)               # (N,1,1,1)
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from pathlib import Path

import torch

__all__ = ["EXTRA", "INSTALL", "MIN_SIZE", "NETS", "STLPIPSUnavailable", "canonical_net",
           "clear_cache", "distance", "import_stlpips", "load_stlpips", "weights_path"]

EXTRA = "perceptual"
INSTALL = f'pip install -e ".[{EXTRA}]"  (or: pip install stlpips-pytorch)'
NETS = ("alex", "vgg")  # the nets stlpips-pytorch ships shift-tolerant weights for
# Smallest H and W each trunk accepts (reflection pads must be smaller than the feature map);
# measured on stlpips-pytorch 0.0.2, every size from here up to 90 runs.
MIN_SIZE: dict[str, int] = {"alex": 21, "vgg": 18}
VARIANT = "shift_tolerant"
_ALIASES = {"alexnet": "alex", "vgg16": "vgg"}
# Modules stlpips_pytorch imports at module level but never uses for the metric.
_SHIMS = {"IPython": "embed", "torchsummary": "summary"}

_CACHE: dict[tuple[str, str, str, int], torch.nn.Module] = {}
_LOCK = threading.RLock()


class STLPIPSUnavailable(FileNotFoundError):
    """The ``stlpips-pytorch`` package (extra ``perceptual``) or one of its weight files is missing.

    A ``FileNotFoundError`` so the commands that stop with one line on missing files
    (``wm rlvr video --reward``, ``wm eval video``) do so here too.
    """


def canonical_net(net: str) -> str:
    """``alex``/``alexnet`` -> ``alex``, ``vgg``/``vgg16`` -> ``vgg``; ValueError for anything else."""
    name = _ALIASES.get(str(net).lower(), str(net).lower())
    if name not in NETS:
        raise ValueError(f"unknown ST-LPIPS network {net!r}; stlpips-pytorch ships shift-tolerant "
                         f"weights for {list(NETS)} only")
    return name


def _stub(name: str, attr: str) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__doc__ = "worldmodels.stlpips: stand-in for an import stlpips_pytorch never uses"

    def unavailable(*args, **kwargs):
        raise RuntimeError(f"{name}.{attr} is a stub (worldmodels.stlpips); install {name} to use it")

    setattr(mod, attr, unavailable)
    return mod


def import_stlpips() -> types.ModuleType:
    """``stlpips_pytorch.stlpips`` (the module defining ``LPIPS``), imported once.

    Raises :class:`STLPIPSUnavailable` naming the extra when the package is not installed.
    """
    with _LOCK:
        if "stlpips_pytorch.stlpips" in sys.modules:
            return sys.modules["stlpips_pytorch.stlpips"]
        if importlib.util.find_spec("stlpips_pytorch") is None:
            raise STLPIPSUnavailable(
                f"ST-LPIPS needs the stlpips-pytorch package (the '{EXTRA}' extra), which is not "
                f"installed; install it with: {INSTALL}")
        stubs = {name: _stub(name, attr) for name, attr in _SHIMS.items()
                 if name not in sys.modules and importlib.util.find_spec(name) is None}
        sys.modules.update(stubs)
        try:
            return importlib.import_module("stlpips_pytorch.stlpips")
        finally:
            for name, mod in stubs.items():  # nobody else sees the stubs
                if sys.modules.get(name) is mod:
                    del sys.modules[name]


def weights_path(net: str = "alex") -> Path:
    """The shipped weight file: ``<stlpips_pytorch>/weights/vST0.0/<net>_shift_tolerant.pth``
    (where the package's own ``LPIPS(pretrained=True)`` looks). Raises STLPIPSUnavailable
    when the package is absent."""
    net = canonical_net(net)
    spec = importlib.util.find_spec("stlpips_pytorch")
    if spec is None or not spec.submodule_search_locations:
        import_stlpips()  # raises the install message
    root = Path(next(iter(spec.submodule_search_locations)))
    return root / "weights" / "vST0.0" / f"{net}_{VARIANT}.pth"


def _missing_file(path: Path) -> str:
    return (f"ST-LPIPS weights {path} are missing from the installed stlpips-pytorch package; "
            f"reinstall it: pip install --force-reinstall stlpips-pytorch")


def _load_weights(model: torch.nn.Module, path: Path) -> None:
    """Load ``path`` into ``model`` checking every key and shape (see module doc, step 2).

    ``model.lins`` is a ModuleList of the same modules as ``lin0..lin4``, so its
    ``lins.<k>.*`` keys alias ``lin<k>.*`` and are not in the file.
    """
    if not path.is_file():
        raise STLPIPSUnavailable(_missing_file(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated / corrupt / not a tensor dict
        raise STLPIPSUnavailable(f"could not read ST-LPIPS weights {path}: {exc}; reinstall "
                                 f"stlpips-pytorch (pip install --force-reinstall stlpips-pytorch)") from exc
    if not isinstance(state, dict):
        raise STLPIPSUnavailable(f"{path} is not a state dict (got {type(state).__name__}); reinstall stlpips-pytorch")
    expected = {k: v for k, v in model.state_dict().items() if not k.startswith("lins.")}
    problems = [f"missing {k}" for k in expected if k not in state]
    problems += [f"unexpected {k}" for k in state if k not in expected]
    problems += [f"{k} has shape {tuple(state[k].shape)}, expected {tuple(v.shape)}"
                 for k, v in expected.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if problems:
        raise STLPIPSUnavailable(f"{path} does not match ST-LPIPS' network ({len(problems)} problems, first: "
                                 f"{problems[:5]}); reinstall stlpips-pytorch")
    result = model.load_state_dict(state, strict=False)
    aliased = all(model.lins[k] is getattr(model, f"lin{k}") for k in range(len(model.lins)))
    if result.unexpected_keys or not aliased or any(not k.startswith("lins.") for k in result.missing_keys):
        raise STLPIPSUnavailable(f"{path}: unexpected ST-LPIPS module layout (missing {result.missing_keys[:5]}, "
                                 f"unexpected {result.unexpected_keys[:5]}); this stlpips-pytorch version is "
                                 f"not supported")


def load_stlpips(net: str = "alex", device: str | torch.device = "cpu") -> torch.nn.Module:
    """Build (once per net, device and weight file) a frozen ST-LPIPS ``LPIPS`` module in eval mode.

    The module takes two float32 (N,3,H,W) batches in [-1, 1] (H, W >= ``MIN_SIZE[net]``) and
    returns (N,1,1,1) distances; its parameters are frozen but it stays differentiable w.r.t.
    its inputs. Raises :class:`STLPIPSUnavailable` (package or weights missing) or ValueError
    (unknown net).
    """
    net = canonical_net(net)
    module = import_stlpips()
    path = weights_path(net)
    if not path.is_file():
        raise STLPIPSUnavailable(_missing_file(path))
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:  # "cuda" and "cuda:0" share one module
        device = torch.device("cuda", torch.cuda.current_device())
    key = (net, str(device), str(path.resolve()), path.stat().st_mtime_ns)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        model = module.LPIPS(pretrained=False, net=net, variant=VARIANT, verbose=False)
        _load_weights(model, path)
        model = model.eval().requires_grad_(False).to(device)
        _CACHE[key] = model
        return model


def _features(model: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Unit-normalised trunk features of (N,3,H,W) frames in [-1,1], one (N,C_l,H_l,W_l) per layer;
    each distinct frame goes through the trunk once (GRPO repeats a target G times, the
    copy-last baselines repeat one frame T times)."""
    flat = x.reshape(x.shape[0], -1)
    inverse = None
    # no dedup with NaN (NaN != NaN) nor under autograd (torch.unique has no gradient)
    if x.shape[0] > 1 and not (x.requires_grad and torch.is_grad_enabled()) and bool(torch.isfinite(flat).all()):
        uniq, inverse = torch.unique(flat, dim=0, return_inverse=True)
        if uniq.shape[0] == x.shape[0]:
            inverse = None
        else:
            x = uniq.reshape(-1, *x.shape[1:])
    feats = model.net(model.scaling_layer(x))
    normalize = importlib.import_module("stlpips_pytorch.utils").normalize_tensor  # the package's (eps 1e-10)
    return [normalize(f) if inverse is None else normalize(f)[inverse] for f in feats]


def distance(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """ST-LPIPS distance (N,) between (N,3,H,W) batches in [-1,1], as ``model(x, y)`` computes it
    (LPIPS v0.1 with the linear layers, spatial mean: see the module doc), but with each distinct
    frame of ``x`` and of ``y`` through the trunk once. ``model``: from :func:`load_stlpips`.
    Equal to ``model(x, y).flatten()`` to float rounding (tests/test_stlpips.py)."""
    if model.version != "0.1" or not model.lpips or model.spatial:
        raise ValueError("distance() expects load_stlpips' model (version 0.1, linear layers, spatial mean)")
    fx, fy = _features(model, x), _features(model, y)
    return sum(model.lins[k]((a - b) ** 2).mean((2, 3)) for k, (a, b) in enumerate(zip(fx, fy, strict=True)))[:, 0]


def clear_cache() -> None:
    """Forget built ST-LPIPS modules."""
    with _LOCK:
        _CACHE.clear()
