"""The student's side: the command line a student's bundle offers (``cli.py``) and, beside it in the bundle,
the notebooks' check cells (grader/kernel.py). ``python -m grader release`` ships exactly the modules these
two import, at any depth (grader/authoring/release.py computes that set), and nothing of reference/,
solutions/, the check records or the grading run.
"""
