"""StateReadout.load and BCPolicy.load are strict (issue 17.4): a weights file that misses, adds
or reshapes a key is an error naming the file and the key; nothing stays at random init."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from planners.policies import BCNet, BCPolicy
from worldmodels.envs.robot_readout import StateReadout
from worldmodels.strict_load import WeightsMismatch


def _edit(path, edit):
    state = load_file(str(path))
    edit(state)
    save_file(state, str(path))


def _readout_dir(tmp_path):
    torch.manual_seed(0)
    ro = StateReadout(image_size=32, width=4)
    ro.mean.fill_(0.5)  # a buffer that a lax load would silently leave at 0
    ro.save(tmp_path / "ro")
    return ro, tmp_path / "ro", tmp_path / "ro" / "readout.safetensors"


def _policy_dir(tmp_path):
    torch.manual_seed(0)
    pol = BCPolicy(BCNet(image_size=32, width=4, action_dim=2), name="bc_t")
    pol.save(tmp_path / "bc")
    return pol, tmp_path / "bc", tmp_path / "bc" / "policy.safetensors"


def test_valid_dirs_load_bit_exact(tmp_path):
    frames = torch.rand(2, 3, 32, 32)
    ro, d, _ = _readout_dir(tmp_path)
    back = StateReadout.load(d)
    assert torch.equal(back(frames), ro.eval()(frames)) and torch.equal(back.mean, torch.full((8,), 0.5))
    pol, d, _ = _policy_dir(tmp_path)
    got = BCPolicy.load(d)
    assert got.name == "bc_t" and torch.equal(got.net(frames), pol.net(frames))


@pytest.mark.parametrize("which", ["readout", "policy"])
@pytest.mark.parametrize("edit,needle", [
    ("drop", r"1 missing key\(s\): \['{p}mean'\]"),
    ("add", r"1 unexpected key\(s\): \['{p}extra'\]"),
    ("shape", r"{p}net\.11\.bias saved \(3,\) vs model \((8|2),\)"),
])
def test_tampered_weights_name_key_and_file(tmp_path, which, edit, needle):
    prefix = "" if which == "readout" else "trunk."
    _, d, f = (_readout_dir if which == "readout" else _policy_dir)(tmp_path)
    ops = {"drop": lambda s: s.pop(f"{prefix}mean"),
           "add": lambda s: s.__setitem__(f"{prefix}extra", torch.zeros(1)),
           "shape": lambda s: s.__setitem__(f"{prefix}net.11.bias", torch.zeros(3))}
    _edit(f, ops[edit])
    load = StateReadout.load if which == "readout" else BCPolicy.load
    with pytest.raises(WeightsMismatch, match=needle.format(p=prefix.replace(".", r"\."))) as e:
        load(d)
    assert str(f) in str(e.value)


def test_config_that_disagrees_with_weights_and_absent_weights(tmp_path):
    _, d, f = _readout_dir(tmp_path)
    (d / "readout.json").write_text(json.dumps({"image_size": 32, "width": 8, "state_dim": 8}))
    with pytest.raises(WeightsMismatch, match=r"readout\.safetensors.*shape mismatch\(es\)"):
        StateReadout.load(d)
    f.unlink()
    with pytest.raises(FileNotFoundError, match=r"readout\.safetensors not found"):
        StateReadout.load(d)
    _, d, f = _policy_dir(tmp_path)
    f.unlink()
    with pytest.raises(FileNotFoundError, match=r"policy\.safetensors not found"):
        BCPolicy.load(d)
