"""The checks a notebook's autograder cells run inside the student's own kernel.

    public_check("mle.binomial_mle", globals())   # visible: the stored public cases
    hidden_check("mle.binomial_mle", globals())   # hidden (nbgrader, grader/hidden.py): the full grader

Both call the functions the notebook has defined, in the notebook's process, through the
same drivers, wire round trip and comparison as the isolated grader, and raise
``CheckFailed`` (an AssertionError, so nbgrader gives the cell 0 points) with the grader's
feedback when the item does not pass.

In-kernel grading is only as strong as the kernel: the student's code runs in the very
process that decides, and can rewrite any of it. ``python -m grader nbgrader regrade``
re-grades a course's submissions in isolated workers and lists every submission that scored
higher in the kernel (docs/security.md: "What grading inside the notebook's kernel cannot prevent").

``public_check`` needs only what a student's release ships (grader/public, no reference/); the hidden
tests call grader/hidden.py, which needs reference/ and the records, which only the instructor has.
"""

from __future__ import annotations

import contextlib
import os
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from grader import public
from grader.runtime import drivers, wire


class CheckFailed(AssertionError):
    """An item that does not pass; its message is the grader's feedback.

    IPython shows what ``_render_traceback_`` returns instead of a traceback, so the cell's error output
    (what nbgrader's feedback page shows the student) is the feedback alone: no frame of the grader, no
    path of the instructor's installation."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class InKernel:
    """The worker interface of grader.sandbox.Sandbox, answered by calling the notebook's own functions.

    Inputs are private copies and replies go through the wire format both ways, exactly as with a
    worker: the checks see plain numbers and arrays, never the student's objects.
    """

    sandboxed = False

    def __init__(self, namespace: Mapping[str, Any]) -> None:
        self.module = types.ModuleType("notebook")
        self.module.__dict__.update({k: v for k, v in namespace.items() if isinstance(k, str)})
        self.calls = drivers.Calls()

    def ensure_loaded(self, name: str, filename: str) -> dict[str, Any]:
        return {"ok": True}

    def exposures(self) -> list[str]:
        return []

    def frozen(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()  # the notebook's code runs only when called: nothing to stop

    def helpers(self) -> int:
        return 0  # the kernel is the student's own process: nothing to tell apart

    def baseline(self, files: Mapping[str, Path], module: types.ModuleType) -> InKernel:
        """The grader's own ``module``, called in this process as the notebook's functions are (like against like)."""
        return InKernel(vars(module))

    def run(self, module: str, filename: str, op: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        request = wire.loads(wire.dumps(op, forwarded=True))  # the student's functions get copies, as a worker would
        try:
            answer = self.calls.perform(self.module, request)
        except Exception as exc:
            return {"error": {"kind": "raised", "type": type(exc).__name__, "message": str(exc)[:600], "where": None}}
        try:
            return wire.loads(wire.dumps({"ok": answer}), tensors=False)
        except (wire.WireError, ValueError, TypeError, OverflowError) as exc:
            return {"error": {"kind": "wire", "type": type(exc).__name__, "message": str(exc)[:600], "where": None}}


def public_check(item_id: str, namespace: Mapping[str, Any]) -> None:
    """Run the item's public cases on the notebook's functions; print a line, or raise CheckFailed."""
    items = public.stored_items()
    if item_id not in items:
        raise KeyError(f"no graded item is called {item_id!r}")
    public_item = items[item_id][1]  # the timed step is checked by the step's own public cases
    cases = [c for c in public.load() if c["item"] == public_item]
    mistakes = public.stored_mistakes().get(public_item)
    result = public.check_item(InKernel(namespace), public_item, cases, mistakes=mistakes)
    if result.passed < result.total:
        raise CheckFailed(f"{item_id}: {result.passed}/{result.total} public checks pass. {result.feedback}")
    print(f"{item_id}: {result.total}/{result.total} public checks pass.")


def install_paths() -> dict[str, str]:
    """Where this Python's libraries and this package live → the short name a traceback shows instead."""
    import sysconfig

    paths = sysconfig.get_paths()
    named = {paths["purelib"]: "<site-packages>", paths["platlib"]: "<site-packages>", paths["stdlib"]: "<python>"}
    named[str(Path(__file__).resolve().parents[1])] = "<course>"  # the folder that holds grader/
    home = os.path.expanduser("~").rstrip("/")
    for path, name in list(named.items()):
        for form in (os.path.realpath(path), path):
            named.setdefault(form, name)
            if home and form.startswith(home + "/"):  # IPython writes a path under $HOME as ~/...
                named.setdefault("~" + form[len(home) :], name)
    return dict(sorted(named.items(), key=lambda kv: len(kv[0]), reverse=True))  # longest first: nested ones


def hide_install_paths() -> None:
    """In an IPython kernel, show errors and warnings with the frames of installed libraries (torch, NumPy) kept
    but the paths of the installation shortened (``<site-packages>/torch/nn/modules/module.py``): what nbgrader's
    autograde kernel prints becomes the student's feedback page, which must not show the instructor's
    machine. The course's nbgrader_config.py has the autograde kernel call this when it starts."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return
    named = install_paths()

    def shorten(line: str) -> str:
        for path, name in named.items():
            line = line.replace(path, name)
        return line

    def handler(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: int | None = None) -> list[str]:
        render = getattr(value, "_render_traceback_", None)
        if callable(render):
            stb = render()
        else:
            stb = shell.InteractiveTB.structured_traceback(etype, value, tb, tb_offset=tb_offset)
        stb = [shorten(line) for line in stb]
        shell._showtraceback(etype, value, stb)
        return stb

    shell.set_custom_exc((Exception,), handler)

    import linecache
    import warnings

    show = warnings.showwarning

    def showwarning(
        message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None
    ) -> None:
        line = linecache.getline(filename, lineno) if line is None else line  # read before the path is shortened
        show(message, category, shorten(filename), lineno, file, line)

    warnings.showwarning = showwarning  # a warning's first line names the file it comes from
