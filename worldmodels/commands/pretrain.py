"""`wm pretrain`: placeholder until its issue lands."""

from worldmodels.commands._common import not_built

app = not_built("pretrain", "in progress")
