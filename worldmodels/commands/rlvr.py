"""`wm rlvr`: placeholder until its issue lands."""

from worldmodels.commands._common import not_built

app = not_built("rlvr", "in progress")
