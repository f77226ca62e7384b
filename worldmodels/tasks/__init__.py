"""Modalities as Tasks (see ``tasks/base.py``), found by name with lazy imports.

    from worldmodels.tasks import get_task_class
    VideoTask = get_task_class("video")
"""

from __future__ import annotations

import importlib

#: task name -> "module:Class"; modules are imported only when asked for
TASKS: dict[str, str] = {
    "video": "worldmodels.tasks.video:VideoTask",
    "text_game": "worldmodels.tasks.text_game:TextGameTask",
    "web": "worldmodels.tasks.web:WebTask",
    "web_policy": "worldmodels.tasks.web_policy:WebPolicyTask",
    "web_value": "worldmodels.tasks.web_value:WebValueTask",
}


def register_task(name: str, target: str) -> None:
    """Register ``name`` -> ``"pkg.module:Class"`` (a Task subclass)."""
    if ":" not in target:
        raise ValueError(f"task target must look like 'pkg.module:Class', got {target!r}")
    TASKS[name] = target


def __getattr__(name: str):
    # base.py imports torch; load it only when one of its names is used (keeps `wm --help` fast)
    if name in ("IGNORE_INDEX", "Task", "repeat_batch", "to_device"):
        from worldmodels.tasks import base

        return getattr(base, name)
    raise AttributeError(name)


def get_task_class(name: str):
    """The Task class registered as ``name`` (or a dotted ``pkg.module:Class`` path)."""
    target = TASKS.get(name, name)
    if ":" not in target:
        raise KeyError(f"unknown task {name!r}; known: {sorted(TASKS)} (or pass 'pkg.module:Class')")
    mod, cls = target.split(":", 1)
    return getattr(importlib.import_module(mod), cls)


__all__ = ["IGNORE_INDEX", "TASKS", "Task", "get_task_class", "register_task", "repeat_batch",
           "to_device"]
