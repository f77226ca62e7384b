"""LPIPS' calibrated linear layers load strictly (issue 17.4): lpips' own load is
``strict=False``, so worldmodels.lpips_weights loads them itself and names what did not match."""

import warnings

import pytest
import torch

from worldmodels.lpips_weights import LPIPSWeightsMissing, _load_linear, linear_path

lpips = pytest.importorskip("lpips")


def bare(net="alex", pretrained=False):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lpips.LPIPS(net=net, pretrained=pretrained, pnet_rand=True, verbose=False)


def lin_weights(model):
    return {k: v for k, v in model.state_dict().items() if k.startswith("lin") and not k.startswith("lins")}


def test_strict_linear_load_equals_the_packages_own_load():
    ours = bare()
    _load_linear(ours, linear_path("alex"))
    ref = bare(pretrained=True)  # lpips' own (lax) load of the same file: the reference
    a, b = lin_weights(ours), lin_weights(ref)
    assert sorted(a) == [f"lin{i}.model.1.weight" for i in range(5)]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["lin0.model.1.weight"], lin_weights(bare())["lin0.model.1.weight"])


@pytest.mark.parametrize("edit,needle", [
    (lambda s: s.pop("lin2.model.1.weight"), "missing lin2.model.1.weight"),
    (lambda s: s.__setitem__("lin9.model.1.weight", torch.zeros(1)), "unexpected lin9.model.1.weight"),
    (lambda s: s.__setitem__("lin0.model.1.weight", torch.zeros(1, 3, 1, 1)),
     r"lin0.model.1.weight has shape \(1, 3, 1, 1\), expected \(1, 64, 1, 1\)"),
])
def test_tampered_linear_file_names_key_and_path(tmp_path, edit, needle):
    state = torch.load(linear_path("alex"), map_location="cpu", weights_only=True)
    edit(state)
    f = tmp_path / "alex.pth"
    torch.save(state, f)
    model = bare()
    before = lin_weights(model)
    with pytest.raises(LPIPSWeightsMissing, match=needle) as e:
        _load_linear(model, f)
    assert str(f) in str(e.value)
    assert all(torch.equal(v, before[k]) for k, v in lin_weights(model).items())  # nothing loaded


def test_absent_linear_file_is_named(tmp_path):
    with pytest.raises(LPIPSWeightsMissing, match=r"nope\.pth: lpips' calibrated linear layers are missing"):
        _load_linear(bare(), tmp_path / "nope.pth")
