"""Student stubs of the five parts, generated from solutions/ by ``python -m grader generate``."""
