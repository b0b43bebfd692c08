"""Test-suite settings: one derandomized Hypothesis profile, so every run tests the same cases, and two tiers.

The fast tier (``pytest -m "not integration"``, under a minute) is the reference against its oracles,
generation, the wire, the comparison, strategies, the diagnosis and argument validation: what a
developer runs while working. The integration tier starts sandboxes, workers, notebooks, nbgrader
and the command line. Every test module is in exactly one tier: a new one must be named below.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ci")

FAST = {
    "test_code_quality",
    "test_boundaries",
    "test_command_line",
    "test_compare",
    "test_data",
    "test_ddpm",
    "test_diagnosis",
    "test_divergences",
    "test_gan",
    "test_generate",
    "test_input_classes",
    "test_mle",
    "test_vae",
    "test_validation",
    "test_wire",
}
INTEGRATION = {
    "test_gradescope",
    "test_grade_class",
    "test_dependencies",
    "test_discrimination",
    "test_fail_closed",
    "test_grade_command",
    "test_hostile",
    "test_nbgrader",
    "test_packaging",
    "test_notebooks",
    "test_public_and_release",
    "test_train",
    "test_wall",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        module = Path(str(item.fspath)).stem
        if module in INTEGRATION:
            item.add_marker(pytest.mark.integration)
        elif module not in FAST:
            raise pytest.UsageError(
                f"{module}.py is in neither test tier: add it to FAST or INTEGRATION in conftest.py"
            )
