"""The parent loop: reference values, verdicts and feedback for every item of a submission.

For each item the runner asks its check for cases (a derandomized Hypothesis run:
the same submission always meets the same inputs), computes the expected output
with the reference in this process, has a worker compute the student's output, and
compares. The first failing case is shrunk to a small one and reported with its
input, the expected and the received value, and the catalogued mistake it matches.
A worker that times out, crashes or runs out of memory ends that item only.
"""

from __future__ import annotations

import contextlib
import os
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from hypothesis import HealthCheck, Phase, configuration, example, given, seed, settings
from hypothesis.errors import Flaky, HypothesisException

from grader.checks import RAISES, Case, Check, Mistake, Outcome, Record, TimedCheck
from grader.contract import NOTEBOOK_NAMES, Item
from grader.grading import compare as cmp
from grader.grading import diagnosis, replay, timing
from grader.grading.diagnosis import Observation
from grader.grading.expected import expected_output, to_wire
from grader.grading.items import BY_ID, ITEMS, RECORDS, any_trains
from grader.grading.turns import Turns, machine_folder
from grader.intake.submission import PartSource, did_you_mean, find_parts, part_of
from grader.intake.untrusted import clean_text
from grader.runtime import drivers
from grader.sandbox import Isolation, Limits, Runner, Sandbox, WorkerDied

# Hypothesis caches what it learns in .hypothesis/ of the working directory; grading writes nothing where it is run.
configuration.set_hypothesis_home_dir(
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "genmath-grader" / "hypothesis"
)


def grading_settings(check: Check) -> settings:
    """Derandomized, no example database, no deadline, no health checks: the same cases every run."""
    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if check.shrink else [])
    return settings(
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=False,
        max_examples=check.max_examples,
        suppress_health_check=list(HealthCheck),
        phases=phases,
        report_multiple_bugs=False,
    )


@dataclass
class ItemResult:
    id: str
    score: int
    max_score: int
    status: str
    feedback: str
    mistakes: tuple[str, ...] = ()  # named in the feedback (Outcome.mistakes); not in the contract's JSON
    limit: str | None = None  # "time" or "memory" (Outcome.limit); not in the contract's JSON

    @property
    def fault(self) -> bool:
        """The grader's own code failed on this item: the instructor must look, the student is not to blame."""
        return self.feedback.startswith(GRADER_FAULT)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "score": self.score,
            "max_score": self.max_score,
            "status": self.status,
            "feedback": self.feedback,
        }


@dataclass
class Report:
    items: list[ItemResult]
    sandboxed: bool
    notes: list[str] = field(default_factory=list)
    pictures: list[Any] = field(default_factory=list)  # grader/pictures/scenes.Picture, when asked for
    wall: str = "none"  # the wall that held: bubblewrap, process or none (grader/sandbox/isolation.py)

    @property
    def score(self) -> int:
        return sum(r.score for r in self.items)

    @property
    def max_score(self) -> int:
        return sum(r.max_score for r in self.items)

    @property
    def faults(self) -> list[str]:
        """Items the grader itself failed to grade."""
        return [r.id for r in self.items if r.fault]

    def as_dict(self) -> dict[str, Any]:
        return {"score": self.score, "max_score": self.max_score, "items": [r.as_dict() for r in self.items]}

    def classified(self) -> dict[str, dict[str, Any]]:
        """item → the fields a class report sorts students by: the mistakes named, the limit hit."""
        return {r.id: {"mistakes": list(r.mistakes), "limit": r.limit} for r in self.items}


class Verdict(Exception):
    """A case the student got wrong: raised inside the Hypothesis test so that it shrinks."""

    def __init__(self, status: str, feedback: str, seen: Observation | None = None) -> None:
        super().__init__(feedback)
        self.status, self.feedback, self.seen = status, feedback, seen


class Stop(Exception):
    """The worker is gone (timeout, crash, memory): the item ends without shrinking."""

    def __init__(self, status: str, feedback: str, limit: str | None = None) -> None:
        super().__init__(feedback)
        self.status, self.feedback, self.limit = status, feedback, limit


# --------------------------------------------------------------------------------------- expected


# --------------------------------------------------------------------------------------- one case


def evaluate(
    check: Check,
    case: Case,
    sandbox: Runner,
    source: tuple[str, str],
    expected: Callable[[Check, Case], Any] | None = None,
) -> Observation:
    """What the student's code answered to ``case``, when it is right; raise Verdict if it is wrong (with
    what was seen, for the diagnosis), Stop if the worker is gone or the function is not written yet.
    ``expected`` gives the reference's value for the case (by default ``expected_output`` computes it)."""
    name, filename = source
    try:
        reply = sandbox.run(
            name, filename, {"op": "run", "driver": check.driver, "inputs": case.inputs}, check.timeout_s
        )
    except WorkerDied as died:
        status = "timeout" if died.kind == "timeout" else "error"
        feedback = f"On input {case.shown}: {died}. Grading went on with the next item."
        raise Stop(status, feedback, died.limit) from None
    if "error" in reply:
        error = reply["error"]
        if cmp.not_implemented(error):
            raise Stop("missing", "Not implemented yet: the function still raises NotImplementedError.")
        if error.get("kind") == "wire":
            raise Verdict(
                "failed", f"On input {case.shown}: returned something the grader cannot read ({error['message']})."
            )
        raised = Observation(case, RAISES, passed=False) if error.get("kind") == "raised" else None
        raise Verdict("error", f"On input {case.shown}: {cmp.describe_error(error)}.", raised)
    received = reply["ok"]
    mismatch = cmp.compare((expected or expected_output)(check, case), received, case.tol)
    if mismatch is None:
        for prop in check.properties:
            if not prop.holds(received, case):
                raise Verdict(
                    "failed", f"On input {case.shown}: {prop.description} does not hold; got {cmp.short(received)}."
                )
        return Observation(case, received, passed=True)
    seen = None if mismatch.what == "device" else Observation(case, received, False, mismatch.what == "dtype")
    raise Verdict("failed", f"On input {case.shown}: {mismatch.message}.", seen)


def probe(check: Check, sandbox: Runner, source: tuple[str, str]) -> diagnosis.Probe:
    """Run the student's code on one more case for the diagnosis: what it answered, or None."""

    def one(case: Case) -> Observation | None:
        try:
            return evaluate(check, case, sandbox, source)
        except Verdict as verdict:
            return verdict.seen
        except Stop:
            return None

    return one


# --------------------------------------------------------------------------------------- one item


def item_seed(item_id: str) -> int:
    """The seed of an item's derandomized run: its own, fixed, whatever the grader's code looks like."""
    return zlib.crc32(item_id.encode())


def run_check(
    check: Check, sandbox: Runner, source: tuple[str, str] | None = None, label: str | None = None
) -> tuple[str, str]:
    """(status, feedback) of one item; ``source`` is (module name, file name), by default the part's own;
    ``label`` is the file named in feedback (a notebook the module was made from), by default the file."""
    outcome = judge(check, sandbox, source, label)
    return outcome.status, outcome.feedback


def judge(check: Check, sandbox: Runner, source: tuple[str, str] | None = None, label: str | None = None) -> Outcome:
    """One item's Outcome (see ``run_check``), with the mistakes its feedback names and the limit it hit as fields:
    the class report classifies students by these, never by searching the feedback's words."""
    item: Item = BY_ID[check.item]
    name, filename = source or (item.module, f"{item.module}.py")
    shown = label or filename
    try:
        loaded = sandbox.ensure_loaded(name, filename)
    except WorkerDied as died:
        feedback = f"The grader could not start a worker for {shown}: {died}."
        return Outcome("error", feedback, limit=died.limit)
    if "error" in loaded:
        error = loaded["error"]
        if error.get("kind") == "died":  # the import hung, crashed or sabotaged the worker
            status = "timeout" if error.get("type") == "timeout" else "error"
            return Outcome(status, f"{shown}: {error['message']}.", limit=WorkerDied.LIMITS.get(str(error.get("type"))))
        return Outcome("error", f"{shown} could not be imported: {cmp.describe_error(error)}.")

    kept = replayable(check, sandbox)
    if kept and (steps := replay.load(check.item, item_seed(check.item))) is not None:
        asking = Asking(sandbox)
        replayed = _replay(check, steps, asking, (name, filename))
        if replayed is not None:
            return replayed
        # The full run meets the kept cases first: what the replay asked is answered again, not asked again, so the
        # student's code is called exactly as without the replay (code that answers a second call otherwise, or
        # hangs on it, cannot tell).
        sandbox = Answering(sandbox, asking.asked)

    failures: list[Verdict | Stop] = []
    observations: list[Observation] = []
    recorded: list[replay.Step] = []

    def expecting(check: Check, case: Case) -> Any:
        value = expected_output(check, case)
        recorded.append(replay.Step(case, value))
        return value

    def test(case: Case) -> None:
        if failures and isinstance(failures[-1], Stop):
            return
        try:
            observations.append(evaluate(check, case, sandbox, (name, filename), expecting))
        except Stop as stop:
            failures.append(stop)
        except Verdict as verdict:
            failures.append(verdict)
            if verdict.seen is not None:
                observations.append(verdict.seen)
            raise

    runner = given(check.cases)(test)
    for pinned in reversed(check.examples):
        runner = example(pinned)(runner)
    runner = seed(item_seed(check.item))(grading_settings(check)(runner))
    try:
        runner()
    except Verdict:
        pass
    except (Flaky, HypothesisException, ExceptionGroup) as exc:
        if not failures:  # no verdict at all: the check itself broke (a strategy, a case builder); fail closed
            return Outcome("error", grader_fault(exc))
        # else a verdict that did not reproduce: keep the last one
    except Exception as exc:
        return Outcome("error", grader_fault(exc))
    if not failures:
        if kept and len(recorded) == len(observations):  # every case answered, and right
            replay.keep(check.item, item_seed(check.item), recorded)
        return Outcome("passed", PASSED)
    last = failures[-1]
    feedback = last.feedback
    named: list[Mistake] = []
    if isinstance(last, Verdict) and last.seen is not None:
        if observations[-1] is not last.seen:  # a failure seen earlier than the last call: explain that one
            observations.append(last.seen)
        try:
            named = diagnosis.explain(
                check,
                observations,
                probe(check, sandbox, (name, filename)),
                lambda c: expected_output(check, c),
                to_wire,
            )
        except Exception as exc:  # a catalogued mistake (or the reference) broke: the grader's fault, not a hint
            return Outcome("error", grader_fault(exc))
        line = diagnosis.feedback_line(named)
        if line:
            feedback += "\n" + line
    limit = last.limit if isinstance(last, Stop) else None
    return Outcome(last.status, feedback, mistakes=tuple(m.name for m in named), limit=limit)


def replayable(check: Check, runner: Runner) -> bool:
    """Whether the item may be graded from its kept cases, and keep them (grader/grading/replay.py): the check
    registered for its item (not a test's variant of it), run behind a wall that keeps the student's code away
    from the grader's files (bubblewrap, or workers of another uid). Without one (``--no-sandbox``, a notebook's
    kernel) the code could write a record, and a record of no cases would pass every submission."""
    wall = getattr(runner, "wall", None)
    return RECORDS.get(check.item) is check and wall is not None and bool(wall.holds)


def _given(value: Any) -> Callable[[Check, Case], Any]:
    return lambda check, case: value


Request = tuple[str, str, dict[str, Any]]  # module, file name, request


class Relay:
    """A runner that passes every request on to ``runner``; everything else is the runner's."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def __getattr__(self, name: str) -> Any:  # the wall, the limits, ...
        return getattr(self.runner, name)

    def ensure_loaded(self, name: str, filename: str) -> dict[str, Any]:
        return self.runner.ensure_loaded(name, filename)

    def frozen(self) -> contextlib.AbstractContextManager[None]:
        return self.runner.frozen()

    def helpers(self) -> int:
        return self.runner.helpers()

    def baseline(self, files: Mapping[str, Path], module: ModuleType) -> Runner:
        return self.runner.baseline(files, module)

    def run(self, module: str, filename: str, op: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        return self.runner.run(module, filename, op, timeout)


class Asking(Relay):
    """Keeps every request passed on, with its reply (``asked``)."""

    def __init__(self, runner: Runner) -> None:
        super().__init__(runner)
        self.asked: list[tuple[Request, dict[str, Any]]] = []

    def run(self, module: str, filename: str, op: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        reply = self.runner.run(module, filename, op, timeout)
        self.asked.append(((module, filename, op), reply))
        return reply


class Answering(Relay):
    """Gives the replies of ``asked`` back, in order, to the same requests, without asking ``runner`` again; from
    the first request that is not the next one kept, asks it everything."""

    def __init__(self, runner: Runner, asked: list[tuple[Request, dict[str, Any]]]) -> None:
        super().__init__(runner)
        self.left = list(asked)

    def run(self, module: str, filename: str, op: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        if self.left:
            (kept_module, kept_filename, kept_op), reply = self.left[0]
            if (kept_module, kept_filename) == (module, filename) and replay.same(kept_op, op):
                self.left.pop(0)
                return reply
            self.left = []
        return self.runner.run(module, filename, op, timeout)


def _replay(check: Check, steps: list[replay.Step], sandbox: Runner, source: tuple[str, str]) -> Outcome | None:
    """The item's outcome from its kept cases (grader/grading/replay.py): passed when every one is answered right,
    and where the worker stopped (a Stop), that outcome, which the full run reaches at the same case; None at the
    first wrong answer, or anything else unforeseen: the full Hypothesis run then grades the item."""
    for step in steps:
        try:
            evaluate(check, step.case, sandbox, source, _given(step.expected))
        except Stop as stop:
            return Outcome(stop.status, stop.feedback, limit=stop.limit)
        except Exception:  # a Verdict, or a fault the full run reports as it always has
            return None
    return Outcome("passed", PASSED)


def grade_record(
    record: Record, runner: Runner, source: tuple[str, str], label: str | None = None, turns: Turns | None = None
) -> Outcome:
    """Grade one item's function in ``source`` (module name, file name) on ``runner``: a timed item by timing
    it against the reference (grader/grading/timing.py), any other by judging its cases; ``label`` names the file.
    ``turns``: the machine's, shared by the graders on it (grader/grading/turns.py): an item is judged in a shared
    turn, and the timed item takes its rounds alone."""
    if isinstance(record, TimedCheck):
        return timing.time_speed(runner, source, record.item, turns)
    with (turns or Turns(None)).take(alone=False):
        return judge(record, runner, source, label)


def dependency_note(check: Record, failed: set[str] | None) -> str:
    """The line that points a failed item to the functions it calls: those of them that failed their own
    check (``failed``: the part's functions whose items did not pass), or, not knowing (None), all of them."""
    if failed is None:
        listed = ", ".join(f"`{f}`" for f in check.depends_on)
        return f"This item calls your {listed}; if one of them fails its own check, fix it first." if listed else ""
    named = [f for f in check.depends_on if f in failed]
    if not named:
        return ""
    which = " and ".join(f"`{f}`" for f in named)
    return (
        f"This item calls your {which} (as the reference solution does), which failed "
        f"{'its' if len(named) == 1 else 'their'} own check: fix that first, it may be all that is wrong here."
    )


GRADER_FAULT = "Internal grader error"
PASSED = "All checks passed."


def grader_fault(exc: BaseException) -> str:
    """Feedback for an item the grader could not grade through a fault of its own (never the student's)."""
    text = clean_text(f"{type(exc).__name__}: {exc}", 300)
    return f"{GRADER_FAULT} ({text}); this is not your fault: tell your instructor."


def refused_entries(problems: list[str], part: str) -> list[str]:
    """What intake said of the entries that would have been this part's module or notebook (a link, a FIFO)."""
    return [p for p in problems if part_of(p.split(" ", 1)[0]) == part]


def grade(
    submission: Path,
    only: Iterable[str] | None = None,
    limits: Limits | None = None,
    isolation: Isolation = "auto",
    on_item: Callable[[ItemResult], None] | None = None,
    turns: Turns | None = None,
    sandbox: Sandbox | None = None,
    pictures: bool = False,
) -> Report:
    """Grade every item (or those in ``only``) of the submission folder: modules or nbgrader notebooks.

    The folder is taken in first (grader/intake/: regular files and folders only, within caps);
    what was left out is reported in the notes, and the rest is graded. Each item takes its turn on
    the machine (grader/grading/turns.py; by default among all graders of this user here). ``sandbox``: an entered
    sandbox that already holds this submission (a class's grading process keeps one from student to student,
    ``Sandbox.take``), left open; by default a sandbox of its own, closed with the grade. ``pictures``: after
    grading, the feedback page's pictures are taken from the parts that loaded (grader/pictures/scenes.py);
    nothing in them changes the grade."""
    wanted = [item for item in ITEMS if only is None or item.id in set(only)]
    turns = turns or Turns(machine_folder())
    results: list[ItemResult] = []
    given = sandbox
    with (
        contextlib.nullcontext(given) if given is not None else Sandbox(Path(submission), limits, isolation) as sandbox
    ):
        parts, notes = find_parts(sandbox.private)
        notes = [*sandbox.intake.problems, *notes]
        present = [item for item in wanted if item.module in parts]
        if present:
            trains = any_trains(item.id for item in present)  # otherwise no process needs the warm-up
            sandbox.start(trains)  # the zygote imports torch on one core while this process warms its own on the other
            if any(isinstance(RECORDS[item.id], TimedCheck) for item in present):
                timing.prepare(sandbox)  # the reference's timed step runs in a worker of its own, ready by then
            if any(_computes_training(RECORDS[item.id], sandbox) for item in present):
                drivers.warm_up()  # paid while the zygote imports, not inside the first training item
        problems = sandbox.convert_notebooks({p.part: p.label for p in parts.values() if p.is_notebook})
        for item in wanted:
            part = parts.get(item.module)
            record = RECORDS[item.id]
            try:
                result = _grade_item(record, item, part, problems, sandbox, notes, turns)
            except Exception as exc:  # the grader's own code broke on this item: it says so, the rest is graded
                result = ItemResult(item.id, 0, item.points, "error", grader_fault(exc))
            if part is not None and result.status != "passed" and sandbox.notes.get(item.module):
                result.feedback += f"\nWhen the cells of {part.label} ran: " + "; ".join(sandbox.notes[item.module])
            results.append(result)
            if on_item:
                on_item(result)
        loaded = {p: source.filename for p, source in parts.items() if p not in problems}
        drawn = _take_pictures(sandbox, loaded, results, turns, notes) if pictures else []
        sandboxed = sandbox.sandboxed
        held = sandbox.wall.kind if hasattr(sandbox, "wall") else "none"  # grader.kernel.InKernel: in the kernel
        notes = sandbox.wall_notes() + notes + sandbox.exposures()
        sandbox.stop()  # nothing of this submission runs on in a sandbox kept open for the next one
    _point_to_failed_dependencies(results)
    return Report(results, sandboxed, notes, drawn, held)


def _computes_training(record: Record, sandbox: Runner) -> bool:
    """Whether this process will compute the reference's training steps for the item: one that trains, and is not
    graded from kept cases (grader/grading/replay.py); the timed item's reference runs in a worker."""
    if not record.trains or isinstance(record, TimedCheck):
        return False
    return not replayable(record, sandbox) or replay.load(record.item, item_seed(record.item)) is None


def _take_pictures(
    sandbox: Sandbox, parts: dict[str, str], results: list[ItemResult], turns: Turns, notes: list[str]
) -> list[Any]:
    """The pictures of the parts that loaded; a fault of the grader's own here costs the pictures and says so."""
    from grader.pictures import scenes

    try:
        with turns.take(False):
            return scenes.take(sandbox, parts, {r.id: r.status for r in results}, sandbox.limits.call_timeout_s)
    except Exception as exc:
        notes.append(f"The feedback page's pictures could not be made: {grader_fault(exc)}")
        return []


def _point_to_failed_dependencies(results: list[ItemResult]) -> None:
    """Each item that did not pass and calls a function of its part whose own item did not pass says so;
    an item whose dependencies were not graded (--items) names them all."""
    graded = {r.id: r for r in results}
    for result in results:
        record = RECORDS.get(result.id)
        if record is None or not record.depends_on or result.status not in ("failed", "error") or result.fault:
            continue
        part = BY_ID[result.id].module
        ids = [f"{part}.{f}" for f in record.depends_on]
        known = all(i in graded for i in ids)
        failed = {i.split(".")[1] for i in ids if i in graded and graded[i].status != "passed"} if known else None
        note = dependency_note(record, failed)
        if note:
            result.feedback += "\n" + note


def _grade_item(
    record: Record,
    item: Item,
    part: PartSource | None,
    problems: dict[str, str],
    sandbox: Sandbox,
    notes: list[str],
    turns: Turns,
) -> ItemResult:
    """One item's result: missing, unreadable, or graded by its record in its turns on the machine."""
    if part is None:
        refused = "".join(f" {p}" for p in refused_entries(sandbox.intake.problems, item.module))
        guess = did_you_mean(sandbox.private, item.module)
        return ItemResult(
            item.id, 0, item.points, "missing",
            f"Neither {item.module}.py nor a notebook such as {NOTEBOOK_NAMES[item.module]}.ipynb is in the "
            f"submission.{guess}{refused}",
        )  # fmt: skip
    if item.module in problems:
        return ItemResult(item.id, 0, item.points, "error", problems[item.module])
    outcome = grade_record(record, sandbox, (item.module, part.filename), part.label, turns)
    if outcome.note:
        notes.append(outcome.note)
    score = item.points if outcome.status == "passed" else 0
    return ItemResult(item.id, score, item.points, outcome.status, outcome.feedback, outcome.mistakes, outcome.limit)
