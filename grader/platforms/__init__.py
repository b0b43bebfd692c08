"""Where courses grade: the entry points that Gradescope's and PrairieLearn's containers run."""
