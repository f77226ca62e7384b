"""LPIPS weight lookup and loading, offline.

The backbone checkpoints written here are RANDOMLY initialised stand-ins for torchvision's
ImageNet files: they exercise the lookup/loading path only. The numbers they give are not
LPIPS and are never reported anywhere.

Run: OMP_NUM_THREADS=1 .venv/bin/pytest -q tests/test_lpips.py
"""

import pytest
import torch

from worldmodels import lpips_weights, metrics
from worldmodels.lpips_weights import BACKBONE_FILES, LPIPSWeightsMissing


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return tmp_path


def _random_backbone(net: str, full: bool = False) -> dict:
    """A randomly initialised torchvision state dict ('features.*' only unless full)."""
    import torchvision

    torch.manual_seed(0)
    if net == "vgg" and not full:  # the features alone; skips the 100M-parameter classifier
        feats = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])
        return {f"features.{k}": v for k, v in feats.state_dict().items()}
    builder = {"vgg": torchvision.models.vgg16, "alex": torchvision.models.alexnet,
               "squeeze": torchvision.models.squeezenet1_1}[net]
    state = builder(weights=None).state_dict()
    return state if full else {k: v for k, v in state.items() if k.startswith("features.")}


def _write(home, net, state):
    path = home / "hub" / "checkpoints" / BACKBONE_FILES[net]
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


@pytest.mark.parametrize("net", ["vgg", "alex", "squeeze"])
def test_missing_weights_message_names_the_file(empty_torch_home, net):
    expected = empty_torch_home / "hub" / "checkpoints" / BACKBONE_FILES[net]
    with pytest.raises(LPIPSWeightsMissing) as info:
        metrics.lpips_fn(net)
    msg = str(info.value)
    assert str(expected) in msg and "TORCH_HOME" in msg and "copy" in msg
    assert isinstance(info.value, FileNotFoundError)


def test_default_net_is_vgg_and_aliases(empty_torch_home):
    with pytest.raises(LPIPSWeightsMissing, match="vgg16-397923af.pth"):
        metrics.lpips(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16))
    assert lpips_weights.canonical_net("alexnet") == "alex"
    with pytest.raises(ValueError, match="unknown LPIPS network"):
        metrics.lpips_fn("resnet")


@pytest.mark.parametrize("net", ["vgg", "alex", "squeeze"])
def test_loading_path_with_local_random_backbone(empty_torch_home, net):
    state = _random_backbone(net)
    _write(empty_torch_home, net, state)
    lp = metrics.lpips_fn(net)
    model = lpips_weights.load_lpips(net)
    # every backbone tensor came from the file, under lpips' slice naming
    for key, tensor in model.net.state_dict().items():
        assert torch.equal(tensor, state["features." + key.split(".", 1)[1]]), key
    assert not any(p.requires_grad for p in model.parameters())
    assert lpips_weights.load_lpips(net) is model  # cached per (net, device, file)
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(2, 2, 3, 32, 32, generator=g), torch.rand(2, 2, 3, 32, 32, generator=g)
    d = lp.per_frame(x, y)
    assert d.shape == (2, 2) and torch.isfinite(d).all() and (d > 0).all()
    assert torch.allclose(lp(x, x), torch.zeros(2), atol=1e-6)
    assert torch.allclose(lp(x, y), d.mean(1))


@pytest.mark.filterwarnings("ignore::UserWarning")  # torchvision's 'pretrained' deprecation notices
def test_matches_stock_lpips_reading_the_same_file(empty_torch_home):
    """Independent path: stock lpips.LPIPS(net='squeeze') lets torchvision read the cached file."""
    import lpips

    _write(empty_torch_home, "squeeze", _random_backbone("squeeze", full=True))
    ours = metrics.lpips_fn("squeeze")
    stock = lpips.LPIPS(net="squeeze", verbose=False).eval()  # file exists: torchvision loads, no download
    g = torch.Generator().manual_seed(2)
    x, y = torch.rand(3, 3, 32, 32, generator=g), torch.rand(3, 3, 32, 32, generator=g)
    with torch.no_grad():
        want = stock(x * 2 - 1, y * 2 - 1).flatten()
        got = ours(x, y)
    assert torch.allclose(got, want, atol=1e-6), (got, want)


def test_corrupt_or_wrong_checkpoint_is_a_clear_error(empty_torch_home):
    path = _write(empty_torch_home, "alex", {})
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(LPIPSWeightsMissing, match="could not read"):
        metrics.lpips_fn("alex")
    state = _random_backbone("alex")
    state["features.0.weight"] = torch.zeros(1, 1, 1, 1)
    del state["features.3.bias"]
    _write(empty_torch_home, "alex", state)
    with pytest.raises(LPIPSWeightsMissing, match="does not match"):
        metrics.lpips_fn("alex")


def test_lpips_is_differentiable_wrt_input(empty_torch_home):
    _write(empty_torch_home, "squeeze", _random_backbone("squeeze"))
    lp = metrics.lpips_fn("squeeze")
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    lp(x, torch.rand(1, 3, 32, 32)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_summarize_reports_lpips_when_asked(empty_torch_home):
    _write(empty_torch_home, "squeeze", _random_backbone("squeeze"))
    x = torch.rand(2, 3, 24, 24)
    s = metrics.summarize(x, x, lpips="squeeze")
    assert s["lpips"] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="at least 17x17"):
        metrics.summarize(x[..., :16, :16], x[..., :16, :16], lpips="squeeze")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_inputs_use_a_cuda_module(empty_torch_home):
    _write(empty_torch_home, "squeeze", _random_backbone("squeeze"))
    lp = metrics.lpips_fn("squeeze", device="cuda")
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    got = lp(x.cuda(), y.cuda())
    assert got.device.type == "cuda"
    assert lpips_weights.load_lpips("squeeze", "cuda") is lpips_weights.load_lpips("squeeze", got.device)
    assert torch.allclose(got.cpu(), lp(x, y), atol=1e-4)
