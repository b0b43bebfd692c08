"""The autograder of the generative-models exercises (see shared/SPEC.md for the contract it grades)."""
