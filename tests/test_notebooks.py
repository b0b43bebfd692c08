"""The five notebooks: generated from one source, points that add up, in-kernel checks, and grading from notebooks."""

from __future__ import annotations

import importlib
import json
import shutil
import types
from pathlib import Path

import nbformat
import pytest

from grader import hidden, kernel
from grader.authoring import notebooks
from grader.authoring.corpus import MUTANTS, patched
from grader.authoring.generate import PARTS
from grader.grading.items import CHECKS, ITEMS
from grader.grading.run import grade
from grader.intake.submission import find_parts
from grader.nbgrader import item_of_test_id
from grader.runtime.convert import notebook_module

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "solutions" / "notebooks"
STUDENT = ROOT / "exercises" / "notebooks"


def nbgrader_cells(path: Path) -> list[tuple[dict, nbformat.NotebookNode]]:
    nb = nbformat.read(path, as_version=4)
    return [(c.metadata["nbgrader"], c) for c in nb.cells if "nbgrader" in c.metadata]


def test_committed_notebooks_are_what_generate_writes() -> None:
    for path, text in notebooks.notebook_files().items():
        assert path.read_text() == text, f"{path.relative_to(ROOT)} is out of date: run `python -m grader generate`"


def test_generation_is_repeatable_and_has_no_outputs() -> None:
    first, second = notebooks.notebook_files(), notebooks.notebook_files()
    assert first == second
    for text in first.values():
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")


def test_autograder_cells_carry_the_contract_points() -> None:
    points: dict[str, int] = {}
    for name in notebooks.NOTEBOOK_NAMES.values():
        for meta, cell in nbgrader_cells(SOURCE / f"{name}.ipynb"):
            if meta["grade"]:
                item = item_of_test_id(meta["grade_id"], {i.id for i in ITEMS})
                assert item is not None and item not in points
                points[item] = meta["points"]
                assert meta["locked"] and not meta["solution"]
                assert "### BEGIN HIDDEN TESTS" in cell.source and f'hidden_check("{item}"' in cell.source
    assert points == {item.id: item.points for item in ITEMS}
    assert sum(points.values()) == 100


def test_every_definition_is_in_exactly_one_cell_and_solution_cells_are_unlocked() -> None:
    for part, name in notebooks.NOTEBOOK_NAMES.items():
        cells = nbgrader_cells(SOURCE / f"{name}.ipynb")
        ids = [meta["grade_id"] for meta, _ in cells]
        assert len(ids) == len(set(ids))
        code = "\n".join(c.source for meta, c in cells if not meta["grade"])
        for definition, text in notebooks.definitions((ROOT / "solutions" / f"{part}.py").read_text()).items():
            assert code.count(text) == 1, f"{name}: {definition}"
        for meta, cell in cells:
            assert meta["solution"] == ("### BEGIN SOLUTION" in cell.source)
            assert meta["locked"] == (not meta["solution"])


def test_a_definition_the_template_leaves_out_follows_the_one_before_it_with_its_check(tmp_path: Path) -> None:
    """A new graded function needs no template edit: its code cell and autograder cell are placed after the
    cell of the definition that precedes it in the solution module."""
    template = (notebooks.TEMPLATES / "01_mle.py").read_text()
    dropped = '# %% include="binomial_log_likelihood"\n'
    assert dropped in template
    (tmp_path / "01_mle.py").write_text(template.replace(dropped, ""))
    cells = [c.source for c in notebooks.build("mle", templates=tmp_path).source.cells if c.cell_type == "code"]
    at = next(i for i, c in enumerate(cells) if c.startswith("def binomial_mle("))
    assert 'public_check("mle.binomial_mle"' in cells[at + 1]
    assert cells[at + 2].startswith("def binomial_log_likelihood(")
    assert 'public_check("mle.binomial_log_likelihood"' in cells[at + 3]
    assert sum(c.startswith("def binomial_log_likelihood(") for c in cells) == 1


def test_a_template_that_includes_a_definition_twice_is_refused(tmp_path: Path) -> None:
    template = (notebooks.TEMPLATES / "01_mle.py").read_text()
    (tmp_path / "01_mle.py").write_text(template + '\n# %% include="binomial_mle"\n')
    with pytest.raises(notebooks.TemplateError, match="more than once"):
        notebooks.build("mle", templates=tmp_path)


def test_student_notebooks_hold_no_solution_and_no_hidden_test() -> None:
    for part, name in notebooks.NOTEBOOK_NAMES.items():
        text = (STUDENT / f"{name}.ipynb").read_text()
        assert "### BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text and "hidden_check" not in text
        assert f'raise NotImplementedError(\\"{part}.' in text
        cells = nbformat.reads(text, as_version=4).cells
        code_lines = {line for c in cells if c.cell_type == "code" for line in c.source.split("\n")}
        solution = (ROOT / "solutions" / f"{part}.py").read_text()
        for block in solution.split("### BEGIN SOLUTION")[1:]:
            for line in block.split("### END SOLUTION")[0].splitlines():
                if line.strip():
                    assert line not in code_lines, f"{name}: solution line leaked: {line.strip()}"


# ------------------------------------------------------------------------------- in-kernel checks


def namespace(package: str, part: str) -> dict:
    return vars(importlib.import_module(f"{package}.{part}"))


def test_in_kernel_checks_pass_the_solutions_and_fail_the_stubs(capsys: pytest.CaptureFixture[str]) -> None:
    kernel.public_check("divergences.kl_divergence", namespace("solutions", "divergences"))
    hidden.hidden_check("divergences.kl_divergence", namespace("solutions", "divergences"))
    assert "passed the full grader" in capsys.readouterr().out
    with pytest.raises(kernel.CheckFailed, match="Not implemented"):
        kernel.public_check("mle.binomial_mle", namespace("exercises", "mle"))
    with pytest.raises(kernel.CheckFailed, match="missing"):
        hidden.hidden_check("mle.binomial_mle", namespace("exercises", "mle"))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the wrong variance divides by n - 1 = 0 on one sample
def test_in_kernel_feedback_names_the_input_the_values_and_the_mistake() -> None:
    wrong = dict(namespace("solutions", "mle"))
    wrong["gaussian_mle"] = lambda x: (float(sum(x) / len(x)), float(__import__("numpy").var(x, ddof=1)))
    with pytest.raises(kernel.CheckFailed) as failed:
        hidden.hidden_check("mle.gaussian_mle", wrong)
    message = str(failed.value)
    assert message.startswith("mle.gaussian_mle: failed.") and "On input" in message and "n - 1" in message
    with pytest.raises(kernel.CheckFailed, match="public checks pass"):
        kernel.public_check("mle.gaussian_mle", wrong)


def test_in_kernel_the_timed_step_is_timed_against_the_reference_in_the_same_process() -> None:
    """In a notebook's kernel the student's step runs in the kernel's process, and so does the reference's
    (``InKernel.baseline``): like against like. The solution passes; a step that loops over the batch fails."""
    hidden.hidden_check("ddpm.ddpm_train_step.speed", namespace("solutions", "ddpm"))
    (loop,) = [m for m in MUTANTS if m.item == "ddpm.ddpm_train_step.speed" and m.name == "per-sample loop"]
    looped = types.ModuleType("notebook")  # as a notebook's cells define them
    exec(compile(patched(loop, ROOT / "solutions"), "05_ddpm.ipynb", "exec"), vars(looped))
    with pytest.raises(kernel.CheckFailed, match="slower than the reference"):
        hidden.hidden_check("ddpm.ddpm_train_step.speed", vars(looped))


def test_in_kernel_inputs_are_copies() -> None:
    ns = dict(namespace("solutions", "ddpm"))
    original = ns["q_sample"]

    def vandal(x_0, t, noise, betas):
        out = original(x_0, t, noise, betas)
        betas.zero_()
        x_0.zero_()
        return out

    ns["q_sample"] = vandal
    hidden.hidden_check("ddpm.q_sample", ns)  # the grader's own arrays are untouched, so its values stand


# ------------------------------------------------------------------------------- grading notebooks


def copy_source(tmp_path: Path, *names: str) -> Path:
    for name in names:
        shutil.copy(SOURCE / f"{name}.ipynb", tmp_path / f"{name}.ipynb")
    return tmp_path


def edit(path: Path, change) -> None:
    nb = nbformat.read(path, as_version=4)
    change(nb)
    nbformat.write(nb, path)


def grade_id_of(cell: nbformat.NotebookNode) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def cell(nb: nbformat.NotebookNode, grade_id: str) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if grade_id_of(c) == grade_id)


def test_a_notebook_becomes_a_module_of_its_code_cells_without_tests_or_demos() -> None:
    module = notebook_module(SOURCE / "01_mle.ipynb", "mle")
    compile(module, "mle.py", "exec")
    assert "def binomial_mle" in module and "public_check" not in module and "plt.subplots" not in module


def test_module_beside_a_notebook_wins_and_says_so(tmp_path: Path) -> None:
    copy_source(tmp_path, "01_mle")
    shutil.copy(ROOT / "solutions" / "mle.py", tmp_path / "mle.py")
    parts, notes = find_parts(tmp_path)
    assert parts["mle"].label == "mle.py" and not parts["mle"].is_notebook
    assert notes == ["Graded mle.py; 01_mle.ipynb beside it was not graded."]


BAD_NOTEBOOK_ITEMS = [
    "mle.binomial_mle",
    "divergences.entropy",
    "divergences.kl_divergence",
    "divergences.gaussian_kl",
    "vae.reparameterize",
    "vae.elbo_loss",
    "gan.generator_loss",
    "ddpm.q_sample",
]


def test_bad_notebooks_lose_only_their_own_points(tmp_path: Path) -> None:
    copy_source(tmp_path, "02_divergences", "03_vae", "04_gan", "05_ddpm")
    (tmp_path / "01_mle.ipynb").write_text('{"cells": [ not json')

    def delete_and_reorder(nb: nbformat.NotebookNode) -> None:
        nb.cells = [c for c in nb.cells if grade_id_of(c) != "divergences-kl_divergence"]
        nb.cells = nb.cells[:1] + nb.cells[1:][::-1]

    def raising_cell(nb: nbformat.NotebookNode) -> None:
        target = cell(nb, "vae-reparameterize")
        target.source = "raise RuntimeError('half-finished')\n" + target.source

    def magics(nb: nbformat.NotebookNode) -> None:
        target = cell(nb, "gan-generator_loss")
        target.source = "%matplotlib inline\n!pip install nothing\n" + target.source

    edit(tmp_path / "02_divergences.ipynb", delete_and_reorder)
    edit(tmp_path / "03_vae.ipynb", raising_cell)
    edit(tmp_path / "04_gan.ipynb", magics)
    (tmp_path / "05_ddpm.ipynb").write_text(json.dumps({"metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    report = {r.id: r for r in grade(tmp_path, BAD_NOTEBOOK_ITEMS).items}
    status = {item: r.status for item, r in report.items()}
    assert status == {
        "mle.binomial_mle": "error",
        "divergences.entropy": "passed",
        "divergences.kl_divergence": "error",
        "divergences.gaussian_kl": "passed",
        "vae.reparameterize": "error",
        "vae.elbo_loss": "passed",
        "gan.generator_loss": "passed",
        "ddpm.q_sample": "error",
    }
    assert "01_mle.ipynb could not be graded: it is not valid notebook JSON" in report["mle.binomial_mle"].feedback
    assert "05_ddpm.ipynb could not be graded" in report["ddpm.q_sample"].feedback
    assert "kl_divergence" in report["divergences.kl_divergence"].feedback
    reparameterize = report["vae.reparameterize"].feedback
    assert "When the cells of 03_vae.ipynb ran: cell" in reparameterize
    assert "RuntimeError: half-finished" in reparameterize


def test_untouched_release_notebooks_get_nothing(tmp_path: Path) -> None:
    for name in notebooks.NOTEBOOK_NAMES.values():
        shutil.copy(STUDENT / f"{name}.ipynb", tmp_path / f"{name}.ipynb")
    only = [f"{part}.{fn}" for part, fn in [("mle", "binomial_mle"), ("vae", "VAE"), ("ddpm", "p_sample_loop")]]
    report = grade(tmp_path, only)
    assert [(r.id, r.status, r.score) for r in report.items] == [(i, "missing", 0) for i in only]


@pytest.mark.parametrize("part", PARTS)
def test_each_part_from_its_notebook_gets_full_marks(tmp_path: Path, part: str) -> None:
    copy_source(tmp_path, notebooks.NOTEBOOK_NAMES[part])
    only = [i for i in CHECKS if i.startswith(f"{part}.")]  # the timed item is timed elsewhere
    report = grade(tmp_path, only)
    assert {r.id: r.status for r in report.items} == dict.fromkeys(only, "passed")


def test_a_hanging_or_exiting_notebook_costs_only_its_own_part(tmp_path: Path) -> None:
    """Notebook code runs in the same workers as modules: a cell that never ends or kills its process
    ends that part's items as timeout or error, within the call limit, and the other parts are graded."""
    from grader.sandbox import Limits

    copy_source(tmp_path, "01_mle", "02_divergences", "04_gan")

    def add_cell(code: str):
        def change(nb: nbformat.NotebookNode) -> None:
            nb.cells.insert(3, nbformat.v4.new_code_cell(code))

        return change

    edit(tmp_path / "01_mle.ipynb", add_cell("while True:\n    pass"))
    edit(tmp_path / "04_gan.ipynb", add_cell("import os\nos._exit(3)"))
    only = ["mle.binomial_mle", "mle.gaussian_mle", "divergences.kl_divergence", "gan.generator_loss"]
    report = grade(tmp_path, only, Limits(call_timeout_s=3.0, memory_mb=1500))
    status = {r.id: r.status for r in report.items}
    assert status == {
        "mle.binomial_mle": "timeout",
        "mle.gaussian_mle": "timeout",
        "divergences.kl_divergence": "passed",
        "gan.generator_loss": "error",
    }
    assert "01_mle.ipynb" in report.items[0].feedback and "04_gan.ipynb" in report.items[3].feedback


CONVERTER = """
import os, sys
sys.path.insert(0, sys.argv[2])
import convert
reply, report = int(sys.argv[1]), int(sys.argv[3])
convert.main()
os.write(report, repr(sys.modules.get("rfc3987_syntax") is not None).encode())
"""


def test_the_converter_reads_a_notebook_as_nbformat_does_without_what_reading_never_uses() -> None:
    """The sandboxed converter (grader/runtime/convert.py) starts once per submission with notebooks: it keeps
    jsonschema from building the IRI grammar it would never use (most of its start), and reads the notebook into
    the same module as the same code does where nothing is kept out (this process)."""
    import os
    import subprocess
    import sys

    from grader.runtime import wire

    notebook = SOURCE / "01_mle.ipynb"
    reply_read, reply_write = os.pipe()
    report_read, report_write = os.pipe()
    request = wire.dumps({"op": "convert", "path": str(notebook), "part": "mle", "seq": 1})
    done = subprocess.run(
        [sys.executable, "-I", "-c", CONVERTER, str(reply_write), str(ROOT / "grader" / "runtime"), str(report_write)],
        input=request, pass_fds=(reply_write, report_write), capture_output=True, timeout=60,
    )  # fmt: skip
    os.close(reply_write)
    os.close(report_write)
    with os.fdopen(reply_read, "rb") as replies, os.fdopen(report_read, "rb") as reports:
        answer, imported = wire.loads(replies.readline()), reports.read().decode()
    assert done.returncode == 0, done.stderr
    assert imported == "False", "the converter imported rfc3987_syntax"
    assert answer == {"ok": notebook_module(notebook, "mle"), "seq": 1}
