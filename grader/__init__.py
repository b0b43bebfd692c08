"""The autograder of the generative-models exercises (see CONTRACT.md for the contract it grades)."""

import gc
import importlib
import sys
from typing import NoReturn

__version__ = "0.14.1"  # the one place the version is written: pyproject.toml reads it, every report carries it


def leave(status: int) -> NoReturn:
    """End a command with ``status``, without Python's last garbage collections walking every object that torch,
    SciPy and Hypothesis made at import (about 0.25 s of each ``grade`` on a 2-core machine). Everything else of
    the exit is Python's own: atexit handlers, flushed streams, each object freed (gc.freeze only exempts them from
    the collector, which has nothing left to find in a process about to end)."""
    gc.freeze()
    sys.exit(status)


def import_before_grading(*modules: str) -> None:
    """Import ``modules`` (the grading code: torch, SciPy, Hypothesis) with Python's cyclic garbage collector held
    off, then freeze what the process holds, once: a grading process's first import. Held on, the collector walks
    the growing heap again and again while torch alone makes some 200,000 objects (0.2 to 0.3 s of CPU of each
    process on the 2-core machine), and each later full collection walks them all once more. What is frozen is
    what the process keeps to its end anyway (modules, classes, functions); objects made after are collected as
    ever. The workers' zygote does the same in its own start (grader/runtime/worker.py)."""
    if all(name in sys.modules for name in modules) or not gc.isenabled():
        return
    gc.disable()
    try:
        for name in modules:
            importlib.import_module(name)
    finally:
        gc.freeze()
        gc.enable()
