"""A submission meets the same inputs wherever it is graded: the grader's derandomized draws do not depend on
which other modules the process has loaded (grader/grading/strategies.py gives Hypothesis no local constants).

Hypothesis collects numbers from the source of every local module in ``sys.modules`` and mixes them into its
draws; a grade-class pool process, a test worker, an editable install and a wheel each load different ones.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DRAW = """
import sys
if len(sys.argv) > 1:  # first load a local module full of numbers, as another entry point or an edit would
    import importlib.util
    spec = importlib.util.spec_from_file_location("noise", sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    sys.modules["noise"] = module
    spec.loader.exec_module(module)
from grader.grading import strategies as gs
from grader.grading.items import CHECKS
for item in ("mle.binomial_log_likelihood", "divergences.kl_divergence", "ddpm.q_sample", "vae.elbo_loss"):
    print(item, [case.shown for case in gs.derandomized_draws(CHECKS[item].cases, 30, 7)])
"""


def draws(*runs: tuple[str, ...]) -> list[str]:
    """What each process prints, one process per tuple of arguments, all started at once (the fast tier runs in one
    process: the machine's other cores are free)."""
    processes = [
        subprocess.Popen([sys.executable, "-c", DRAW, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for args in runs
    ]
    printed = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=300)
            assert process.returncode == 0, err[-2000:]
            printed.append(out)
    finally:
        for process in processes:
            process.kill()
            process.wait()
    return printed


def test_draws_do_not_depend_on_the_modules_the_process_loaded(tmp_path: Path) -> None:
    noise = tmp_path / "noise.py"
    numbers = [f"{k / 1000}" for k in range(1, 500)] + [str(k) for k in range(2, 400, 3)] + ["1e4", "-3.25", "0.298"]
    noise.write_text(f"NUMBERS = [{', '.join(numbers)}]\n")
    plain, noisy = draws((), (str(noise),))
    assert len(plain.splitlines()) == 4 and plain == noisy, (plain, noisy)
