"""A late penalty for nbgrader: a share of each notebook's score per day (or part of a day) late.

``python -m grader nbgrader init COURSE --due WHEN --late-percent-per-day P`` names it in the course's
``nbgrader_config.py``; nbgrader's ``autograde`` then calls it for every notebook of a submission whose
timestamp (written by ``nbgrader collect``) is after the assignment's due date, and stores the penalty
in the gradebook, which ``nbgrader export`` and the feedback pages subtract. nbgrader's own choice is all
(``zero``) or nothing (``none``).

    penalty = score · min(1, ⌈seconds late / 86400⌉ · P / 100)

In an existing course, the two lines of nbgrader_config.py that name it (with P = 10):

    c.AssignLatePenalties.plugin_class = "grader.nbgrader.late.PercentPerDay"
    c.PercentPerDay.percent_per_day = 10.0
"""

from __future__ import annotations

import math

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Float

DAY_S = 86_400


class PercentPerDay(LateSubmissionPlugin):
    """P percent of the notebook's score per started day late, all of it after 100 / P days."""

    percent_per_day = Float(10.0, help="The share of the score lost per started day late, in percent.").tag(config=True)

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float) -> float | None:
        if total_seconds_late <= 0:
            return None
        days = math.ceil(total_seconds_late / DAY_S)
        return float(score) * min(1.0, days * self.percent_per_day / 100.0)
