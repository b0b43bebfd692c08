"""Instructor solutions of the five parts; exercises/ and the notebooks are generated from these files."""
