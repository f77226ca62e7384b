"""worldmodels: train world models with MLE + RLVR and plan with them.

Quick start (tiny presets, CPU)::

    make demo          # robot data -> tokenizer -> world model -> RLVR -> eval
    wm --help          # every command group
"""

__version__ = "0.1.0"
