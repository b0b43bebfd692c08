"""What only a clone of the course repository can do, because it reads solutions/ and the notebook templates:
generate the exercises and notebooks (``generate.py``, ``notebooks.py``), build the student bundle
(``release.py``), and prove each check discriminates on its corpus (``corpus.py``, ``audit.py``).

Nothing on the grading path imports this package (tests/test_boundaries.py), and the wheel leaves it
out (tests/test_packaging.py): the corpus quotes the solutions it patches.
"""
