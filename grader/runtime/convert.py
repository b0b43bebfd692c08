"""A notebook made into a module, in a sandboxed process of its own: notebooks are student data too.

    python convert.py RESPONSE_FD

Like the worker, it reads one JSON request a line from stdin and writes one reply a line to
RESPONSE_FD, and the grader starts it in the same sandbox, with the same limits and a time
limit per notebook: reading a notebook (JSON of any shape) and turning IPython syntax into
Python (IPython's ``transform_cell``, slow on crafted cells) happen here, never in the grader.

    {"op": "convert", "path": "/submission/01_mle.ipynb", "part": "mle"}   →   {"ok": module text}

The module is the notebook's code cells, minus nbgrader's autograder (test) cells and the
cells tagged ``demo``; each cell runs on its own, so a cell that raises costs only the
definitions after the error in that cell, and IPython magics (``%matplotlib``, ``!pip``) do
nothing. Cell order does not matter: annotations are not evaluated (as under ``from __future__
import annotations``), and cells that raised run again, up to twice, after the others, so a
cell moved above the imports still defines its function. Metadata of the wrong type (``"tags":
5``) counts as absent. The module runs only in a worker, like any other student code.

This file runs inside the sandbox: it imports nbformat and IPython, nothing of the grader.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

DEMO_TAG = "demo"
CELL_ERRORS = "__grader_cell_errors__"  # the generated module's list of "cell N raised ..." lines
MAX_CELLS = 500  # a notebook with more code cells than this is not a submission
MAX_MODULE_CHARS = 4_000_000

PRELUDE = '''"""{part}, made by the grader from the code cells of {notebook}; each cell runs on its own."""

import linecache as _linecache
import os as _os


class _NoIPython:
    """Magics and shell escapes (%matplotlib, !pip) do nothing outside Jupyter."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def get_ipython():
    return _NoIPython()


_CELLS = {cells!r}
_FLAGS = __import__("__future__").annotations.compiler_flag  # annotations are not evaluated, as in a module
_pending = list(_CELLS)
for _pass in range(3):  # a cell that needs a name defined further down runs again once the rest has run
    _failed, {errors} = [], []
    for _label, _code in _pending:
        _name = _os.path.join(_os.path.dirname(__file__), {notebook!r} + ", " + _label)
        _linecache.cache[_name] = (len(_code), None, _code.splitlines(True), _name)
        try:
            exec(compile(_code, _name, "exec", flags=_FLAGS, dont_inherit=True), globals())
        except BaseException as _exc:
            _failed.append((_label, _code))
            {errors}.append(f"{{_label}} raised {{type(_exc).__name__}}: {{_exc}}")
    if len(_failed) in (0, len(_pending)):
        break
    _pending = _failed
'''


class NotebookError(ValueError):
    """A file that is not a notebook this grader can read; the message says why, for the student."""


def _transform(code: str) -> str:
    """IPython syntax (magics, shell escapes) as plain Python calls, when IPython is installed."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # pragma: no cover
        return code
    try:
        return TransformerManager().transform_cell(code)
    except Exception:
        return code


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def notebook_module(path: Path, part: str) -> str:
    """The module text of one notebook, or NotebookError saying why it is not a readable notebook."""
    import json

    import nbformat

    try:
        notebook = nbformat.reads(path.read_text(encoding="utf-8", errors="replace"), as_version=4)
    except (json.JSONDecodeError, nbformat.reader.NotJSONError) as err:
        raise NotebookError(f"it is not valid notebook JSON ({str(err).splitlines()[0][:200]})") from None
    except RecursionError:
        raise NotebookError("it is not a notebook nbformat can read (its JSON is nested too deeply)") from None
    except Exception as err:
        raise NotebookError(
            f"it is not a notebook nbformat can read ({type(err).__name__}: {str(err)[:200]})"
        ) from None
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list) or not cells:
        raise NotebookError("it has no cells")
    code: list[tuple[str, str]] = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        meta = _dict(cell.get("metadata"))
        tags = meta.get("tags")
        if _dict(meta.get("nbgrader")).get("grade") is True or (isinstance(tags, list) and DEMO_TAG in tags):
            continue
        source = cell.get("source", "")
        source = "".join(s for s in source if isinstance(s, str)) if isinstance(source, list) else str(source)
        code.append((f"cell {number}", _transform(source)))
        if len(code) > MAX_CELLS:
            raise NotebookError(f"it has more than {MAX_CELLS} code cells")
    module = PRELUDE.format(part=part, notebook=path.name, cells=code, errors=CELL_ERRORS)
    if len(module) > MAX_MODULE_CHARS:
        raise NotebookError(f"its code is longer than {MAX_MODULE_CHARS:,} characters")
    return module


def handle(request: dict[str, Any]) -> dict[str, Any]:
    if request.get("op") == "ping":
        return {"ok": "pong"}
    try:
        return {"ok": notebook_module(Path(request["path"]), request["part"])}
    except NotebookError as err:
        return {"error": {"kind": "notebook", "type": "NotebookError", "message": str(err), "where": None}}
    except BaseException as err:
        message = f"it could not be read ({type(err).__name__})"
        return {"error": {"kind": "notebook", "type": "NotebookError", "message": message, "where": None}}


def _tagged(value: Any) -> Any:
    """Strings, None and dicts of them in the wire's JSON form (dicts tagged), without importing wire,
    which would import torch: this process starts in a fraction of a second."""
    if isinstance(value, dict):
        return {"__dict__": {k: _tagged(v) for k, v in value.items()}}
    return value


def without_iri_grammar() -> None:
    """Keep this process's jsonschema, when nbformat first imports it, from building rfc3987_syntax's IRI grammar.

    Where rfc3987_syntax is installed (Jupyter's packages install it), jsonschema builds that grammar as it imports
    its format checkers: 0.74 s of this converter's 0.88 s start on the 2-core machine, and as much when ``nbgrader
    regrade`` opens the gradebook. nbformat checks no string format, nor does the gradebook, so nothing here uses
    it; jsonschema goes on without it (a format checker whose import fails is skipped). Once jsonschema is imported
    there is nothing left to spare, and nothing is changed."""
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]  # None: its import raises ImportError


def main() -> None:
    import json

    without_iri_grammar()  # this process starts once per submission with notebooks
    reply = os.fdopen(int(sys.argv[1]), "wb", buffering=0)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    for line in sys.stdin.buffer:
        sequence = None
        try:
            request = json.loads(line)["__dict__"]
            sequence = request.get("seq")
            answer = handle({k: v for k, v in request.items() if isinstance(v, str)})
        except BaseException as err:
            answer = {"error": {"kind": "protocol", "type": type(err).__name__, "message": "", "where": None}}
        reply.write(json.dumps({"__dict__": {**_tagged(answer)["__dict__"], "seq": sequence}}).encode() + b"\n")


if __name__ == "__main__":
    main()
