"""The autograder of the generative-models exercises (see CONTRACT.md for the contract it grades)."""

__version__ = "0.11.0"  # the one place the version is written: pyproject.toml reads it, every report carries it
