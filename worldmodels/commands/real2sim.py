"""`wm real2sim`: placeholder until its issue lands."""

from worldmodels.commands._common import not_built

app = not_built("real2sim", "in progress")
