"""What the sandbox sees of the grader: this folder, copied whole into every sandbox, and nothing else.

``worker.py`` runs a student's functions, ``convert.py`` turns a notebook into a module,
``drivers.py`` calls the graded functions and ``wire.py`` carries inputs and replies as JSON.
They import only each other (as siblings: inside the sandbox this folder is not a package of
``grader``), the standard library, NumPy, torch, and nbformat and IPython to read notebooks.
They hold no expected value and import nothing of reference/ or solutions/:
tests/test_boundaries.py reads the imports of every file here.
"""
