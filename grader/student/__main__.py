"""python -m grader.student (in a student's bundle: python -m grader), the student's command line."""

from grader import leave
from grader.student.cli import main

if __name__ == "__main__":
    leave(main())
