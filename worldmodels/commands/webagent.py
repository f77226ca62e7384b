"""`wm webagent`: the MPC web agent over a web-DOM world model (not built yet)."""

from worldmodels.commands._common import not_built

app = not_built("webagent", "the web-DOM world model and MPC web agent have no issue yet")
