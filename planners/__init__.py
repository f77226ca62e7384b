"""Consumers of world models: CEM/MPPI planners, the oracle simulator, the state readout,
image policies, and the Real2Sim evaluator with its report.

libtriton and Mesa's EGL driver (used by MuJoCo's headless renderer) both carry LLVM; loading
libtriton *after* an EGL context exists crashes the process (seen with torch 2.15 + triton
3.9: torch.optim imports torch._dynamo, which imports triton). ``planners._preload`` imports
triton first; this package and the modules that render-then-train import it.
"""

from planners import _preload  # noqa: F401
