"""`--help` lists every --set key with its default and doc line; configs written before the
generic pipeline (``data:`` sections, ``eval.clips``, top-level ``readout``) still load."""

from dataclasses import dataclass, field

import yaml
from typer.testing import CliRunner

from worldmodels.cli import app
from worldmodels.commands._common import config_fields

runner = CliRunner()


def _help(*cmd: str) -> str:
    r = runner.invoke(app, [*cmd, "--help"], terminal_width=200)
    assert r.exit_code == 0, r.output
    return " ".join(r.output.replace("│", " ").split())


def test_rlvr_help_lists_the_grpo_knobs_with_defaults():
    text = _help("rlvr", "video")
    for key in ("grpo.num_generations = 16", "grpo.beta = 0.001", "grpo.temperature = 1.0",
                "grpo.epsilon = 0.2", "eval.items = 64", "task.root = None", "reward = 'mae'"):
        assert key in text, key
    assert "samples per prompt (the GRPO group)" in text  # the field's doc line


def test_pretrain_help_lists_nested_keys():
    text = _help("pretrain", "video")
    for key in ("train.optim.lr =", "task.layout.frame_skip = 1", "model.preset = 'tiny'",
                "model.lora.r = 8"):
        assert key in text, key


@dataclass
class _Inner:
    """Inner.

    depth: how deep, e.g. 3. More words here that
        continue on the next line.
    """

    depth: int = 3


@dataclass
class _Outer:
    """Outer.

    name: a name.
    inner: the inner section.
    """

    name: str = "x"
    inner: _Inner = field(default_factory=_Inner)


def test_config_fields_reads_nested_docs_and_stops_at_the_first_sentence():
    assert config_fields(_Outer) == [("name", "x", "a name."),
                                     ("inner.depth", 3, "how deep, e.g. 3.")]


def test_legacy_video_recipes_and_overrides_still_load(tmp_path):
    from worldmodels.commands.pretrain import PretrainVideoConfig
    from worldmodels.commands.rlvr import RLVRVideoConfig
    from worldmodels.config import load_config, resume_config, save_config

    recipe = tmp_path / "old.yaml"
    recipe.write_text(yaml.safe_dump({"data": {"root": "d", "layout": {"future_frames": 3}},
                                      "init_new_tokenizer": True}))
    cfg = load_config(PretrainVideoConfig, recipe, ["data.tokenizer=t"])
    assert (cfg.task.root, cfg.task.tokenizer, cfg.task.layout.future_frames) == ("d", "t", 3)
    assert cfg.task.init_new_tokenizer is True
    rl = load_config(RLVRVideoConfig, None, ["eval.clips=5", "readout=r", "data=d2"])
    assert (rl.eval.items, rl.reward_options, rl.task.root) == (5, {"readout": "r"}, "d2")
    # a resume request by the old name is compared under the new one
    save_config(rl, tmp_path / "run")
    import pytest

    from worldmodels.config import ConfigError

    with pytest.raises(ConfigError, match="eval.items: recorded 5, requested 6"):
        resume_config(RLVRVideoConfig, tmp_path / "run", {"eval.clips": 6})
