"""worldmodels.config: YAML + dotted overrides into validated dataclasses, resolved config saved."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import yaml

from worldmodels.config import ConfigError, load_config, save_config, to_dict


@dataclass
class OptimCfg:
    """lr: learning rate. betas: Adam betas."""

    lr: float = 1e-3
    betas: tuple[float, ...] = (0.9, 0.95)

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"optim.lr must be > 0, got {self.lr}")


@dataclass
class RunCfg:
    """name: run name. steps: optimizer steps. optim: optimizer. levels: FSQ levels. note: optional."""

    name: str = "run"
    steps: int = 10
    amp: bool = False
    levels: list[int] = field(default_factory=lambda: [7, 5, 5])
    optim: OptimCfg = field(default_factory=OptimCfg)
    note: str | None = None


def test_defaults_yaml_then_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"steps": 20, "optim": {"lr": 0.5}}))
    cfg = load_config(RunCfg, p, ["optim.lr=1e-4", "levels=[8,8]", "amp=true", "note=hi"])
    assert cfg.steps == 20  # from the file
    assert cfg.optim.lr == pytest.approx(1e-4)  # override beats the file
    assert cfg.optim.betas == (0.9, 0.95)  # default kept, tuple restored
    assert cfg.levels == [8, 8] and cfg.amp is True and cfg.note == "hi"


def test_int_field_accepts_no_float_and_float_accepts_int():
    assert load_config(RunCfg, None, ["optim.lr=1"]).optim.lr == 1.0
    with pytest.raises(ConfigError, match="steps: expected an integer"):
        load_config(RunCfg, None, ["steps=2.5"])


def test_unknown_field_lists_known_ones():
    with pytest.raises(ConfigError, match=r"optim.lrr.*known fields of OptimCfg: \['lr', 'betas'\]"):
        load_config(RunCfg, None, ["optim.lrr=1"])


def test_validation_error_from_post_init_surfaces():
    with pytest.raises(ValueError, match="optim.lr must be > 0"):
        load_config(RunCfg, None, ["optim.lr=-1"])


def test_malformed_override_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        load_config(RunCfg, None, ["steps"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(RunCfg, tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not a config section"):
        load_config(RunCfg, None, ["name.x=1"])


def test_save_roundtrip(tmp_path):
    cfg = load_config(RunCfg, None, ["steps=3", "optim.betas=[0.8,0.9]"])
    path = save_config(cfg, tmp_path / "run")
    assert path.name == "config.yaml"
    again = load_config(RunCfg, path)
    assert to_dict(again) == to_dict(cfg)
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".config-")]
