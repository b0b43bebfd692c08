"""The benchmark that says where a command's CPU goes (benchmarks/cpu_by_process.py): it tells the grader's
processes apart and counts the CPU of a command's descendants, not only its own."""

from __future__ import annotations

import sys

import pytest

from benchmarks.cpu_by_process import main, role

PYTHON = "/usr/bin/python3"
ZYGOTE = [PYTHON, "-I", "-B", "/opt/grader-runtime/worker.py", "--zygote", "4", "--warm-up"]


def test_each_process_of_a_grade_gets_its_role() -> None:
    bwrap = ["/usr/bin/bwrap", "--ro-bind", "/usr", "/usr", *ZYGOTE]  # its command line ends with the zygote's
    assert role(bwrap, [PYTHON, "-m", "grader"], is_root=False) == "bwrap"
    assert role(ZYGOTE, bwrap, is_root=False) == "zygote"
    assert role(ZYGOTE, [PYTHON, "-P", "-c", "from grader.batch.engine import serve; serve(5)"], False) == "zygote"
    assert role(ZYGOTE, ZYGOTE, is_root=False) == "worker (forked)"
    template = [PYTHON, "-I", "-B", "/tmp/grader-template-1-x/runtime/worker.py", "--template", "4"]
    grading = [PYTHON, "-P", "-c", "from grader.batch.engine import serve; serve(5)"]
    assert role(template, grading, False, None) == "template"
    assert role(template, template, False, grading) == "zygote"
    assert role(template, template, False, template) == "worker (forked)"
    assert role([PYTHON, "-I", "-B", "/opt/grader-runtime/convert.py", "7"], bwrap, is_root=False) == "converter"
    assert role([PYTHON, "-P", "-c", "from grader.batch.engine import serve; serve(5)"], None, False) == (
        "grading process"
    )
    assert role([PYTHON, "-m", "grader", "grade", "solutions"], None, is_root=True) == "command"
    assert role(["sleep", "1"], None, is_root=False) == "other"


BURN = """
import os, time
def burn(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
if os.fork() == 0:
    burn(0.25)
    time.sleep(0.3)  # read again after its burn, however late a busy machine lets the readings come
    os._exit(0)
burn(0.25)
os.wait()
"""


def test_a_childs_cpu_is_counted_beside_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--", sys.executable, "-c", BURN]) == 0
    rows = {line[:18].strip(): line.split() for line in capsys.readouterr().out.splitlines()[2:]}
    assert float(rows["command"][-1]) >= 0.24, rows  # its own 0.25 s, read while it waits for its child
    assert rows["other"][-2] == "1" and float(rows["other"][-1]) >= 0.24, rows  # the forked child, counted apart
    assert float(rows["all"][-1]) >= 0.48, rows
