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


# --- resume_config: a run continues with its recorded settings --------------------------------

def _recorded_run(tmp_path):
    from worldmodels.config import save_config as save

    run = tmp_path / "run"
    save(RunCfg(name="a", steps=10, note="kept", optim=OptimCfg(lr=0.5)), run)
    return run


def test_resume_keeps_recorded_values_and_applies_allowed_changes(tmp_path):
    from worldmodels.config import resume_config

    run = _recorded_run(tmp_path)
    # nothing requested: every value is the recorded one, not the dataclass default
    cfg = resume_config(RunCfg, run, {}, run_field=None)
    assert (cfg.name, cfg.steps, cfg.note, cfg.optim.lr) == ("a", 10, "kept", 0.5)
    # an allowed change is applied; requests equal to the recorded value (spelt as the YAML
    # string "5e-1" or as a tuple for a list field) are no conflict
    cfg = resume_config(RunCfg, run, {"steps": 25, "optim.lr": "5e-1", "levels": (7, 5, 5)},
                        may_change={"steps"}, run_field=None)
    assert (cfg.steps, cfg.optim.lr, cfg.levels) == (25, 0.5, [7, 5, 5])


def test_resume_conflict_names_every_field_with_both_values(tmp_path):
    from worldmodels.config import resume_config

    run = _recorded_run(tmp_path)
    with pytest.raises(ConfigError) as e:
        resume_config(RunCfg, run, {"steps": 25, "optim.lr": 0.1, "name": "b", "amp": False},
                      may_change={"steps", "amp"}, run_field=None)
    msg = str(e.value)
    assert "optim.lr: recorded 0.5, requested 0.1" in msg
    assert "name: recorded 'a', requested 'b'" in msg
    assert "May change on resume: amp, steps" in msg and "steps: recorded" not in msg
    assert "config.yaml" in msg


def test_resume_run_field_follows_the_directory_and_errors_are_named(tmp_path):
    from worldmodels.config import resume_config

    run = _recorded_run(tmp_path)
    moved = tmp_path / "moved"
    run.rename(moved)
    # the run field names where the run is now; it is never a conflict
    assert resume_config(RunCfg, moved, {"name": "elsewhere"}, run_field="name").name == str(moved)
    with pytest.raises(ConfigError, match="holds no recorded config"):
        resume_config(RunCfg, tmp_path / "none", {})
    with pytest.raises(ConfigError, match=r"optim.lrr"):
        resume_config(RunCfg, moved, {"optim.lrr": 1}, run_field=None)
    with pytest.raises(ConfigError, match="'name' is not a config section"):
        resume_config(RunCfg, moved, {"name.x": 1}, run_field=None)


def test_requested_values_layers_in_order(tmp_path):
    from worldmodels.config import parse_overrides, read_config_file, requested_values

    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"steps": 20, "optim": {"lr": 0.5, "betas": [0.8, 0.9]}}))
    asked = requested_values({"optim": {"lr": 9.0}, "note": "preset"}, read_config_file(p),
                             parse_overrides(["optim.lr=1e-4", "steps=3", "steps=4"]))
    # raw YAML values (1e-4 without a dot is a string in YAML 1.1; the field coerces it later)
    assert asked == {"optim.lr": "1e-4", "note": "preset", "steps": 4, "optim.betas": [0.8, 0.9]}
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        parse_overrides(["steps"])
