"""Make the five nbgrader notebooks from their templates and the instructor sources in solutions/.

A template (``solutions/notebook_templates/01_mle.py``, jupytext's percent format) holds the
teaching: markdown cells with the math, and the demonstration code (plots, a short training
run) in cells tagged ``demo``. It names the code it needs instead of repeating it:

    # %% include="binomial_mle"      the function (or class) of that name from solutions/mle.py
    # %% include="header"            that module's imports

Every top-level definition of the solution module is included exactly once, or generation
fails: a notebook's code is the module's. The autograder cell of each graded item follows the
cell that includes its function, made from the item's record (grader/checks/): a new record
gets its cell, with its points, without a hand edit of the template.

Two notebooks come out of one template:

- ``solutions/notebooks/<name>.ipynb``: nbgrader's *source* version. Solution cells keep the
  ``### BEGIN SOLUTION`` markers; test cells run the public checks visibly and the full grader
  inside ``### BEGIN HIDDEN TESTS``; every cell has nbgrader metadata (solution cells, locked
  given code, autograder cells whose points are the contract's).
- ``exercises/notebooks/<name>.ipynb``: the student version for courses without nbgrader, made
  with the same stripping as exercises/*.py.

Notebooks are written without outputs, with fixed cell ids and sorted keys, so that git diffs
are readable and generation is byte-for-byte repeatable; a test fails when they drift.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from grader.authoring.generate import ROOT, strip_solutions
from grader.contract import NOTEBOOK_NAMES, PARTS, Item
from grader.grading.items import ITEMS, RECORDS
from grader.nbgrader import test_id
from grader.runtime.convert import DEMO_TAG  # the converter, which runs sandboxed, leaves these cells out

TEMPLATES = ROOT / "solutions" / "notebook_templates"
NBGRADER_SCHEMA = 3
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


class TemplateError(ValueError):
    """A template that does not include its module's code, or its part's tests, exactly once."""


# ----------------------------------------------------------------------------------- grade ids


def solution_id(part: str, name: str) -> str:
    return f"{part}-{name}"


# ------------------------------------------------------------------------ the solution's pieces


def definitions(source: str) -> dict[str, str]:
    """'header' (the imports) and every top-level def/class of a module, each as its source text.

    The module docstring is left out (the notebook's markdown teaches instead), and so is
    ``from __future__ import annotations``, which a notebook does not need.
    """
    tree = ast.parse(source)
    lines = source.splitlines()
    body = list(tree.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    starts = [min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))]) for node in body]
    pieces: dict[str, str] = {}
    header: list[tuple[int, int]] = []  # (first, last) line of each import
    seen_definition = False
    for index, node in enumerate(body):
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            seen_definition = True
            # the node's own lines run up to the next node: trailing comments (### END SOLUTION)
            # are inside it, except comments at the margin, which introduce the next definition
            end = starts[index + 1] - 1 if index + 1 < len(body) else len(lines)
            while end > node.lineno and (not lines[end - 1].strip() or lines[end - 1].startswith("#")):
                end -= 1
            start = starts[index]
            while start > 1 and lines[start - 2].startswith("#"):
                start -= 1  # comments directly above belong to the definition
            pieces[node.name] = "\n".join(lines[start - 1 : end])
        elif isinstance(node, ast.Import | ast.ImportFrom) and not seen_definition:
            if not (isinstance(node, ast.ImportFrom) and node.module == "__future__"):
                header.append((starts[index], node.end_lineno or node.lineno))
        else:
            raise TemplateError(f"line {node.lineno}: only imports and definitions can go into notebook cells")
    pieces["header"] = "\n".join(lines[header[0][0] - 1 : header[-1][1]]) if header else ""
    return pieces


# --------------------------------------------------------------------------------------- cells


def _nbgrader(grade_id: str, *, solution: bool = False, grade: bool = False, points: int | None = None) -> dict:
    meta: dict = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": not solution,
        "schema_version": NBGRADER_SCHEMA,
        "solution": solution,
    }
    if points is not None:
        meta["points"] = points
    return meta


def tested_function(item_id: str) -> str:
    """The function of its part whose notebook cell an item's autograder cell follows: the one it grades,
    or for a timed item, the one it times."""
    return RECORDS[item_id].public_cases_of.split(".")[1]


def test_cell_source(item: Item) -> str:
    """The autograder cell of one item: public checks in sight, the full grader hidden."""
    item_id, points = item.id, item.points
    return (
        f"# Autograder: {item_id} ({points} point{'s' if points != 1 else ''}).\n"
        "# Visible: the public checks, a few fixed cases. Hidden: the full grader, on many more.\n"
        "from grader.kernel import public_check\n"
        "\n"
        f'public_check("{item_id}", globals())\n'
        "### BEGIN HIDDEN TESTS\n"
        "from grader.hidden import hidden_check\n"
        "\n"
        f'hidden_check("{item_id}", globals())\n'
        "### END HIDDEN TESTS"
    )


@dataclass(frozen=True)
class Built:
    source: NotebookNode  # nbgrader's source version, with solutions and hidden tests
    student: NotebookNode  # the release version, as exercises/ has it


def build(part: str, templates: Path = TEMPLATES, solutions: Path = ROOT / "solutions") -> Built:
    """The source and student notebooks of one part."""
    import jupytext  # only generation needs it

    name = NOTEBOOK_NAMES[part]
    template = jupytext.read(templates / f"{name}.py", fmt="py:percent")
    module = (solutions / f"{part}.py").read_text()
    pieces = definitions(module)
    items = [item for item in ITEMS if item.module == part]
    unplaced = sorted({tested_function(i.id) for i in items} - set(pieces))
    if unplaced:
        raise TemplateError(f"{name}: graded functions {unplaced} are not defined in solutions/{part}.py")
    _check_tags(part, name, template, module, pieces, items)
    following = _unplaced(template, pieces)
    used: list[str] = []
    source_cells: list[NotebookNode] = []

    def add(text: str, metadata: dict) -> None:
        source_cells.append(nbformat.v4.new_code_cell(text, id=f"{name}-{len(source_cells):02d}", metadata=metadata))

    for index, cell in enumerate(template.cells):
        meta = {key: value for key, value in cell.metadata.items() if key in ("include", "tags")}
        if cell.cell_type == "markdown":
            source_cells.append(nbformat.v4.new_markdown_cell(cell.source, id=f"{name}-{len(source_cells):02d}"))
            continue
        if "include" not in meta:
            if DEMO_TAG not in meta.get("tags", []):
                raise TemplateError(f"{name}: cell {index} is neither an include nor tagged {DEMO_TAG!r}")
            add(cell.source, meta)
            continue
        what = meta.pop("include")
        if what not in pieces:
            raise TemplateError(f"{name}: include={what!r} is not a top-level name of solutions/{part}.py")
        for definition in [what, *following[what]]:  # the template's own, then what it leaves to generation
            used.append(definition)
            text = pieces[definition]
            is_solution = "### BEGIN SOLUTION" in text
            grade_id = solution_id(part, definition) + ("" if is_solution else "-given")
            add(text, {**(meta if definition == what else {}), "nbgrader": _nbgrader(grade_id, solution=is_solution)})
            for item in items:  # the autograder cells of what this cell defines, in the records' order
                if tested_function(item.id) == definition:
                    grade = _nbgrader(test_id(item.id), grade=True, points=item.points)
                    add(test_cell_source(item), {"nbgrader": grade})
    twice = sorted({x for x in used if used.count(x) > 1})
    if twice:
        raise TemplateError(f"{name}: definitions included more than once: {twice}")
    source = _notebook(source_cells)
    student_cells = []
    for cell in source_cells:
        copy = nbformat.from_dict(cell)
        if cell.cell_type == "code":
            copy.source = strip_solutions(cell.source, part).rstrip("\n")
        student_cells.append(copy)
    return Built(source, _notebook(student_cells))


def _unplaced(template: NotebookNode, pieces: dict[str, str]) -> dict[str, list[str]]:
    """Definition the template includes → the definitions that follow it in the solution module and that the
    template does not include: generation puts them, with their autograder cells, right after it. A new
    function gets its cell without a template edit; its teaching can be written into the template later."""
    included = [c.metadata["include"] for c in template.cells if c.cell_type == "code" and "include" in c.metadata]
    following: dict[str, list[str]] = {name: [] for name in pieces}
    anchor = "header"  # the module's imports come first; a definition before any included one follows them
    for definition in pieces:  # in the module's order (``definitions`` keeps it), "header" last
        if definition in included:
            anchor = definition
        elif definition != "header":
            following[anchor].append(definition)
    if "header" not in included and following["header"]:
        raise TemplateError(f"definitions {following['header']} come before any included one, and no header cell")
    return following


def _check_tags(
    part: str, name: str, template: NotebookNode, module: str, pieces: dict[str, str], items: list[Item]
) -> None:
    """The points a student reads must be the records': each graded function's docstring carries its tag
    (``[mle.binomial_mle, 2 points]``; a timed item adds ``+ 2 for speed`` to its step's), and the part's
    total stands in the solution module's first line and the notebook's title."""
    total = sum(item.points for item in items)
    heading = f"({total} points)"
    title = template.cells[0].source.splitlines()[0] if template.cells else ""
    module_doc = module.split("\n", 1)[0]
    wrong = [where for where, text in (("the notebook's title", title), (f"solutions/{part}.py", module_doc))
             if heading not in text]  # fmt: skip
    for item in items:
        record = RECORDS[item.id]
        unit = "point" if item.points == 1 else "points"
        tag = (
            f"[{item.id}, {item.points} {unit}"
            if record.public_cases_of == item.id
            else (f" + {item.points} for {item.id.rsplit('.', 1)[1]}]")
        )
        if tag not in pieces.get(tested_function(item.id), ""):
            wrong.append(f"the docstring of {tested_function(item.id)} (wants {tag.strip()!r})")
    if wrong:
        raise TemplateError(f"{name}: the points in {'; '.join(wrong)} are not the records' ({heading} in all)")


def _notebook(cells: list[NotebookNode]) -> NotebookNode:
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata = {
        "kernelspec": KERNELSPEC,
        "language_info": {"name": "python"},
    }
    nbformat.validate(notebook)
    return notebook


def dumps(notebook: NotebookNode) -> str:
    return nbformat.writes(notebook) + "\n"


def notebook_files() -> dict[Path, str]:
    """Path → content of every generated notebook, source and student versions."""
    files: dict[Path, str] = {}
    for part in PARTS:
        built = build(part)
        name = NOTEBOOK_NAMES[part]
        files[ROOT / "solutions" / "notebooks" / f"{name}.ipynb"] = dumps(built.source)
        files[ROOT / "exercises" / "notebooks" / f"{name}.ipynb"] = dumps(built.student)
    return files


def generate() -> list[Path]:
    written = []
    for path, text in notebook_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
