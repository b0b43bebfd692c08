"""The stored public results: ``python -m grader reference regenerate`` writes them from the reference and the
check records, ``reference verify`` recomputes them and reports drift (grader/public.py reads them).

``grader/public/expected.json`` holds the graded items (id, points, whose public cases check each) and a
few fixed cases per item with their expected outputs; ``manifest.json`` beside it the library versions,
how the cases were drawn, and a checksum. ``pictures.npz`` holds the feedback page's two small trained
models (grader/pictures/): regenerating retrains them (a minute or two on a laptop's CPU) unless told to
keep them; the manifest records their checksum and the losses they reach on a fixed batch, which
``verify`` recomputes. Instructor side: this module needs reference/ and the records.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import Any

from grader import public
from grader.grading import compare as cmp
from grader.runtime import wire

GENERATED_PER_ITEM = 2  # drawn cases per item, beside up to two pinned ones: a quick look, not the grade
PINNED_PER_ITEM = 2
CANDIDATES = 40  # float64 cases drawn per item, derandomized, that the drawn public cases are chosen from
CANDIDATE_SEED = 20_261_202  # their own stream, so that the choice does not move when other code changes


def build_cases() -> list[dict[str, Any]]:
    """The public cases, computed from the reference: float64 cases only, so one run gives value and dtype."""
    from grader.grading.expected import expected_output, to_wire
    from grader.grading.items import CHECKS

    cases: list[dict[str, Any]] = []
    for item_id, check in CHECKS.items():  # a timed item is checked by its step's public cases
        answers = _Answers(check, expected_output, to_wire)
        pinned = [c for c in check.examples if c.reference_inputs is None][:PINNED_PER_ITEM]
        for case in pinned + _choose(answers, pinned):
            cases.append({
                "item": item_id,
                "driver": check.driver,
                "shown": case.shown,
                "tol": list(case.tol),
                "inputs": wire.encode(case.inputs),
                "expected": wire.encode(_unwire(answers.expected(case))),
                **_mistake_outputs(answers, case),
            })  # fmt: skip
    return cases


class _Answers:
    """The reference's answer on a case and each catalogued mistake's (wire data, or RAISES), computed once;
    the mistakes' through grader/grading/diagnosis.py's cache, as grading computes them."""

    def __init__(self, check: Any, expected_output: Any, to_wire: Any) -> None:
        from grader.grading.diagnosis import Outputs

        self.check, self.expected_output = check, expected_output
        self.outputs = Outputs(to_wire)
        self.cache: dict[int, Any] = {}

    def expected(self, case: Any) -> Any:
        if id(case) not in self.cache:
            self.cache[id(case)] = self.expected_output(self.check, case)
        return self.cache[id(case)]

    def mistake(self, case: Any, mistake: Any) -> Any:
        return self.outputs.of(mistake, case)


def _differ(a: Any, b: Any, case: Any) -> bool:
    """Two answers on ``case`` that the comparison tells apart (numbers only, as diagnosis compares them)."""
    from grader.grading.diagnosis import agree

    return not agree(a, b, case, dtypes=False)


def _choose(answers: _Answers, pinned: list[Any]) -> list[Any]:
    """GENERATED_PER_ITEM of CANDIDATES drawn float64 cases, chosen one after another so that, with the pinned
    ones, as many catalogued mistakes as possible fail a public case and as many pairs of them as possible
    answer differently on one (so that the public checks can say which it is); ties go to the shorter input,
    then to the earlier draw. A strategy's first draws are its simplest (zeros), on which many mistakes give
    the right answer: taken as they come, they let a quarter of the catalogued mistakes pass every public check."""
    from grader.grading import strategies as gs

    drawn = gs.derandomized_draws(answers.check.cases, CANDIDATES, CANDIDATE_SEED)
    drawn = [c for c in drawn if c.reference_inputs is None]
    mistakes = answers.check.mistakes
    pairs = [(a, b) for i, a in enumerate(mistakes) for b in mistakes[i + 1 :]]

    def score(chosen: list[Any]) -> tuple[int, int]:
        caught = sum(any(_differ(answers.mistake(c, m), answers.expected(c), c) for c in chosen) for m in mistakes)
        told = sum(any(_differ(answers.mistake(c, a), answers.mistake(c, b), c) for c in chosen) for a, b in pairs)
        return caught, told

    chosen: list[Any] = []
    for _ in range(min(GENERATED_PER_ITEM, len(drawn))):
        rest = [(i, c) for i, c in enumerate(drawn) if not any(c is d for d in chosen)]
        _, best = max(rest, key=lambda ic: (*score([*pinned, *chosen, ic[1]]), -len(ic[1].shown), -ic[0]))
        chosen.append(best)
    return chosen


def _mistake_outputs(answers: _Answers, case: Any) -> dict[str, Any]:
    """What each catalogued mistake of the item returns on ``case`` (``mistakes``: name → wire data) or that it
    raises there (``raise``: names), so that the public checks can name a mistake as the grader does."""
    from grader.checks import RAISES

    returns: dict[str, Any] = {}
    raises: list[str] = []
    for mistake in answers.check.mistakes:
        wrong = answers.mistake(case, mistake)
        if wrong is RAISES:
            raises.append(mistake.name)
        else:
            returns[mistake.name] = wire.encode(_unwire(wrong))
    return {"mistakes": returns, "raise": raises}


def _unwire(value: Any) -> Any:
    """An expected output in wire form (Arrays) back to NumPy/torch values that wire.encode accepts."""
    import torch

    if isinstance(value, wire.Array):
        return torch.from_numpy(value.array.copy()) if value.kind == "torch" else value.array
    if isinstance(value, dict):
        return {k: _unwire(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return type(value)(_unwire(v) for v in value)
    return value


def build_items() -> list[dict[str, Any]]:
    """The graded items as the student's side needs them, from the records: id, points, whose public cases, and
    the catalogued mistakes (name → the sentence that names it in feedback)."""
    from grader.grading.items import CHECKS, RECORDS

    return [
        {"id": r.item, "points": r.points, "cases_of": r.public_cases_of,
         "mistakes": {m.name: m.explanation for m in getattr(CHECKS.get(r.item), "mistakes", ())}}
        for r in RECORDS.values()
    ]  # fmt: skip


def _serialise(items: list[dict[str, Any]], cases: list[dict[str, Any]]) -> str:
    return json.dumps({"items": items, "cases": cases}, sort_keys=True, separators=(",", ":")) + "\n"


def pictures_entry() -> dict[str, Any]:
    """What the manifest records of the stored picture weights: checksum, size, training, and their losses."""
    from grader.pictures import train, weights

    return {
        "file": weights.FILE.name,
        "sha256": hashlib.sha256(weights.FILE.read_bytes()).hexdigest(),
        "bytes": weights.FILE.stat().st_size,
        "trained": f"reference, scikit-learn's 8 x 8 digits, seed {train.SEED}: DigitNet {train.DDPM_STEPS} Adam "
                   f"steps of ddpm_train_step, VAE{weights.VAE_DIMS} {train.VAE_STEPS} of vae_train_step",
        "losses": train.evaluate(),
    }  # fmt: skip


def verify_pictures() -> list[str]:
    """Drift between the stored picture weights and what the manifest records of them; [] when none."""
    import math

    recorded = json.loads(public.MANIFEST.read_text()).get("pictures")
    if recorded is None:
        return [f"{public.MANIFEST.name} records nothing of the pictures' weights"]
    now = pictures_entry()
    if now["sha256"] != recorded["sha256"]:
        return [f"{now['file']} does not match the checksum in {public.MANIFEST.name}"]
    return [
        f"{now['file']}: the {name} of the stored weights is now {value!r}, recorded {recorded['losses'].get(name)!r}"
        for name, value in now["losses"].items()
        if not math.isclose(value, recorded["losses"].get(name, math.nan), rel_tol=1e-6)
    ]


def regenerate(retrain_pictures: bool = True) -> tuple[Path, ...]:
    import hypothesis
    import numpy
    import scipy
    import torch

    from grader.pictures import train, weights

    if retrain_pictures:
        weights.save(train.train())
    text = _serialise(build_items(), build_cases())
    public.EXPECTED.parent.mkdir(parents=True, exist_ok=True)
    public.EXPECTED.write_text(text)
    data = json.loads(text)
    manifest = {
        "file": public.EXPECTED.name,
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
        "cases": len(data["cases"]),
        "items": len({c["item"] for c in data["cases"]}),
        "drawn": f"up to {PINNED_PER_ITEM} pinned and {GENERATED_PER_ITEM} drawn float64 cases per item, the "
                 f"drawn chosen from {CANDIDATES} derandomized Hypothesis draws (the grading strategies, seed "
                 f"{CANDIDATE_SEED}) to fail and tell apart the catalogued mistakes; no example database",
        "versions": {"python": platform.python_version(), "numpy": numpy.__version__, "scipy": scipy.__version__,
                     "torch": torch.__version__, "hypothesis": hypothesis.__version__},
        "pictures": pictures_entry(),
    }  # fmt: skip
    public.MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    return (weights.FILE, public.EXPECTED, public.MANIFEST) if retrain_pictures else (public.EXPECTED, public.MANIFEST)


def verify() -> list[str]:
    """Drift between the stored expected results and the reference now; [] when none."""
    stored = public.load()
    manifest = json.loads(public.MANIFEST.read_text())
    problems = []
    if hashlib.sha256(public.EXPECTED.read_bytes()).hexdigest() != manifest["sha256"]:
        problems.append(f"{public.EXPECTED.name} does not match the checksum in {public.MANIFEST.name}")
    problems += verify_pictures()
    if public.stored()["items"] != build_items():
        problems.append("the stored list of items and points differs from the check records")
    live = build_cases()
    if len(live) != len(stored):
        return [*problems, f"{len(stored)} stored cases but the reference now makes {len(live)}"]
    for old, new in zip(stored, live, strict=True):
        if (old["item"], old["shown"]) != (new["item"], new["shown"]):
            problems.append(f"{old['item']}: the cases changed ({old['shown']} became {new['shown']})")
            continue
        expected = wire.decode(old["expected"], tensors=False)
        now = wire.decode(new["expected"], tensors=False)
        mismatch = cmp.compare(now, expected, tuple(old["tol"]))
        if mismatch:
            problems.append(f"{old['item']} on {old['shown']}: {mismatch.message}")
        problems += _mistakes_drift(old, new)
    return problems


def _mistakes_drift(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Where the stored outputs of a case's catalogued mistakes differ from what the mistakes return now."""
    where = f"{old['item']} on {old['shown']}"
    if (sorted(old.get("mistakes", {})), old.get("raise")) != (sorted(new["mistakes"]), new["raise"]):
        return [f"{where}: the catalogued mistakes changed"]
    problems = []
    for name, stored_output in old["mistakes"].items():
        now = wire.decode(new["mistakes"][name], tensors=False)
        mismatch = cmp.compare(now, wire.decode(stored_output, tensors=False), tuple(old["tol"]))
        if mismatch:
            problems.append(f"{where}, mistake {name}: {mismatch.message}")
    return problems
