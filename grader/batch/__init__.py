"""Grading a whole class: ``python -m grader grade-class`` (grader/batch/classroom.py) and its parts."""
