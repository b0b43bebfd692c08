"""Test-suite settings: one derandomized Hypothesis profile, so every run tests the same cases, and two tiers.

The fast tier (``pytest -m "not integration"``, under a minute) is the reference against its oracles,
generation, the wire, the comparison, strategies, the diagnosis and argument validation: what a
developer runs while working. The integration tier starts sandboxes, workers, notebooks, nbgrader
and the command line. Every test module is in exactly one tier: a new one must be named below.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from grader.runtime.convert import without_iri_grammar

# nbformat, as test modules import it, imports jsonschema, which would build rfc3987_syntax's IRI grammar (about
# 0.7 s of each test process's start); nothing here checks a string's format, as the grader's converter does not.
without_iri_grammar()

# The cases a passing item ran are kept (grader/grading/replay.py): here in a folder of this test process (and the
# commands it starts), never the user's own cache, so that a run starts with none and leaves none behind.
_CACHE = tempfile.mkdtemp(prefix="grader-test-cache-")
os.environ["GRADER_CACHE_DIR"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

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
    "test_benchmarks",
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
    "test_turns",
    "test_names",
    "test_public_mistakes",
    "test_public_store",
    "test_strategies_determinism",
    "test_vae",
    "test_validation",
    "test_wire",
}
INTEGRATION = {
    "test_feedback_page",
    "test_gradescope",
    "test_grade_class",
    "test_hostile_class",
    "test_dependencies",
    "test_docs",
    "test_discrimination",
    "test_fail_closed",
    "test_faults",
    "test_grade_command",
    "test_hostile",
    "test_nbgrader",
    "test_packaging",
    "test_prairielearn",
    "test_replay",
    "test_process_wall",
    "test_notebooks",
    "test_public_and_release",
    "test_student_package",
    "test_train",
    "test_wall",
}


# Under pytest-xdist (``-n N --dist loadgroup``, as CI runs the suite) the tests that use a module-scoped fixture
# of their own module (one that grades a lot: the discrimination corpus, a class, a release) run on one process
# together, or every process would build it again; the module's other tests go wherever there is room.


@pytest.fixture(scope="session")
def kept_cases() -> None:
    """Every item's cases kept (grader/grading/replay.py) in this test process's folder, as after any passing
    submission: what a test grades then meets the replay first."""
    from grader.grading.run import grade

    assert grade(Path(__file__).resolve().parents[1] / "solutions").score == 100


@pytest.fixture(scope="session")
def corpus_drawn() -> list[Any]:
    """The whole corpus (grader/authoring/corpus.py) graded once a run by the audit's own code (two processes, as
    the command's default), every item by its full Hypothesis run, no kept cases: what test_discrimination judges,
    and what test_replay compares its replays with. The tests that use it share one process (group "corpus")."""
    from grader.authoring import audit

    before = os.environ.get("GRADER_CACHE_DIR")
    os.environ["GRADER_CACHE_DIR"] = "off"  # the spawned grading processes read it
    try:
        return audit.grade_corpus(audit.corpus(), workers=2)
    finally:
        os.environ["GRADER_CACHE_DIR"] = before or _CACHE


def _group(item: pytest.Item) -> str | None:
    """The xdist group of a test: "corpus" for those that use ``corpus_drawn``, its module's name for those that
    use a module-scoped fixture of their own module, else None (it goes wherever there is room)."""
    module = item.nodeid.split("::")[0]
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    if "corpus_drawn" in info.names_closure:
        return "corpus"
    own = any(
        definition.scope == "module" and definition.baseid == module
        for definitions in info.name2fixturedefs.values()
        for definition in definitions
    )
    return Path(module).stem if own else None


# The longest single pieces of work (minutes each on 2 cores) go first, so that no process starts one of
# them when the others have finished, and the fast tier's hundreds of short tests go last, to even out the
# processes' ends: the order of collection is the order xdist deals work out.
LONGEST_FIRST = (
    "test_nbgrader.py::test_an_nbgrader_course_from_init_to_gradebook",
    "test_process_wall.py::test_the_hostile_suites_hold_in_a_container_without_namespaces",
    "test_hostile.py::test_the_hostile_corpus_through_the_class_batch",
    "test_discrimination.py",
    "test_grade_class.py",
    "test_student_package.py",
    "test_nbgrader.py::test_the_jupyterhub_exchange",
)


def _rank(item: pytest.Item) -> tuple[int, bool]:
    longest = next((k for k, key in enumerate(LONGEST_FIRST) if key in item.nodeid), len(LONGEST_FIRST))
    return longest, Path(str(item.fspath)).stem in FAST


# First among the plugins: pytest-xdist's own hook, which turns an ``xdist_group`` mark into the node id's
# ``@group`` suffix that ``--dist loadgroup`` schedules by, must see the marks this one adds.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        module = Path(str(item.fspath)).stem
        if module in INTEGRATION:
            item.add_marker(pytest.mark.integration)
        elif module not in FAST:
            raise pytest.UsageError(
                f"{module}.py is in neither test tier: add it to FAST or INTEGRATION in conftest.py"
            )
        group = _group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=_rank)  # stable: within a rank, the order of the files
