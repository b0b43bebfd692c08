"""The autograder of the generative-models exercises (see CONTRACT.md for the contract it grades)."""

from typing import NoReturn

__version__ = "0.11.0"  # the one place the version is written: pyproject.toml reads it, every report carries it


def leave(status: int) -> NoReturn:
    """End a command with ``status``, without Python's last garbage collections walking every object that torch,
    SciPy and Hypothesis made at import (about 0.25 s of each ``grade`` on a 2-core machine). Everything else of
    the exit is Python's own: atexit handlers, flushed streams, each object freed (gc.freeze only exempts them from
    the collector, which has nothing left to find in a process about to end)."""
    import gc
    import sys

    gc.freeze()
    sys.exit(status)
