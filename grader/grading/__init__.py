"""How a submission is graded: the runner, the items and their cases, the comparison, the diagnosis of a
mistake, the timed item."""
