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

from grader import compare as cmp
from grader import public
from grader.runtime import wire

GENERATED_PER_ITEM = 2  # drawn cases per item, beside up to two pinned ones: a quick look, not the grade
PINNED_PER_ITEM = 2


def build_cases() -> list[dict[str, Any]]:
    """The public cases, computed from the reference: float64 cases only, so one run gives value and dtype."""
    from hypothesis import HealthCheck, Phase, given, settings

    from grader.items import CHECKS
    from grader.run import expected_output

    cases: list[dict[str, Any]] = []
    for item_id, check in CHECKS.items():  # a timed item is checked by its step's public cases
        drawn = _draw(check.cases, given, settings, HealthCheck, Phase)
        chosen = [c for c in check.examples if c.reference_inputs is None][:PINNED_PER_ITEM] + drawn
        for case in chosen:
            cases.append({
                "item": item_id,
                "driver": check.driver,
                "shown": case.shown,
                "tol": list(case.tol),
                "inputs": wire.encode(case.inputs),
                "expected": wire.encode(_unwire(expected_output(check, case))),
            })  # fmt: skip
    return cases


def _draw(strategy: Any, given: Any, settings: Any, health: Any, phase: Any) -> list[Any]:
    """The first GENERATED_PER_ITEM float64 cases a derandomized run of ``strategy`` draws."""
    drawn: list[Any] = []

    @settings(derandomize=True, database=None, deadline=None, max_examples=25, phases=[phase.generate],
              suppress_health_check=list(health))  # fmt: skip
    @given(strategy)
    def collect(case: Any) -> None:
        if case.reference_inputs is None and len(drawn) < GENERATED_PER_ITEM:
            drawn.append(case)

    collect()
    return drawn


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
    """The graded items as the student's side needs them, from the records: id, points, whose public cases."""
    from grader.items import RECORDS

    return [{"id": r.item, "points": r.points, "cases_of": r.public_cases_of} for r in RECORDS.values()]


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
        "drawn": f"up to {PINNED_PER_ITEM} pinned and {GENERATED_PER_ITEM} drawn float64 cases per item, "
                 "derandomized Hypothesis (the grading strategies), no example database",
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
    return problems
