"""The public checks' stored results equal the reference's, and the student release carries no solution:
`check` runs there with reference/, solutions/ and the hidden checks made unimportable."""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest

from grader import public, regenerate
from grader.authoring.corpus import MUTANTS, patched
from grader.authoring.release import release, shipped_modules
from tests.answer_key import solution_lines

ROOT = Path(__file__).resolve().parents[1]
BLOCK = (
    "import sys\nfor name in ('reference', 'solutions', 'grader.checks', 'grader.grading.run'):\n"
    "    sys.modules[name] = None\n"
)


@pytest.fixture(scope="module")
def cases_now() -> list[dict[str, Any]]:
    """The public cases as the reference computes them now (some 8 s of CPU), once for the two tests below."""
    return regenerate.build_cases()


@pytest.fixture
def reference_now(cases_now: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """``verify`` and ``regenerate`` compute the same cases: each gets its own copy of ``cases_now``."""
    monkeypatch.setattr(regenerate, "build_cases", lambda: copy.deepcopy(cases_now))


def test_stored_results_match_the_reference_and_the_manifest(reference_now: None) -> None:
    assert regenerate.verify() == []
    manifest = json.loads(public.MANIFEST.read_text())
    assert manifest["sha256"] == hashlib.sha256(public.EXPECTED.read_bytes()).hexdigest()
    assert manifest["items"] == len(regenerate.build_items()) - 1  # the timed item has its step's cases
    assert manifest["cases"] == len(public.load())
    assert set(manifest["versions"]) == {"python", "numpy", "scipy", "torch", "hypothesis"}


# torch's CPU build computes matrix products and reductions with oneMKL, which does not promise the same bits
# from run to run (its vectorised paths depend on how the arrays happen to be aligned in memory, and on the
# processor): whole-suite runs here gave 1 to 2 ulp of difference in VAE.encode, gaussian_kl and the like, and a
# byte-for-byte comparison failed. A changed draw, formula or mistake moves values by far more than
# REGENERATE_ULPS units in the last place of the array's largest element; everything that is not a float must be
# identical.
REGENERATE_ULPS = 64


def _close(x: np.ndarray, y: np.ndarray) -> bool:
    finite = np.isfinite(y)
    scale = float(np.max(np.abs(y[finite]))) if finite.any() else 0.0
    atol = REGENERATE_ULPS * float(np.finfo(x.dtype).eps) * scale
    return bool(np.allclose(x, y, rtol=0.0, atol=atol, equal_nan=True))


def differences(ours: Any, stored: Any, path: str = "") -> list[str]:
    """Where two stored-results documents differ: anything but floats must be equal; floats, and float arrays of
    the same dtype, shape and device, within REGENERATE_ULPS."""
    if isinstance(ours, dict) and isinstance(stored, dict):
        if "__array__" in ours and "__array__" in stored:
            a, b = ours["__array__"], stored["__array__"]
            if {k: v for k, v in a.items() if k != "data"} != {k: v for k, v in b.items() if k != "data"}:
                return [f"{path}: {a} != {b}"]
            x, y = (np.frombuffer(base64.b64decode(d["data"]), dtype=np.dtype(d["dtype"])) for d in (a, b))
            if x.dtype.kind == "f" and _close(x, y):
                return []
            return [] if np.array_equal(x, y) else [f"{path}: {x[:4]} != {y[:4]}"]
        if set(ours) != set(stored):
            return [f"{path}: keys {sorted(ours)} != {sorted(stored)}"]
        return [d for k in ours for d in differences(ours[k], stored[k], f"{path}/{k}")]
    if isinstance(ours, list) and isinstance(stored, list) and len(ours) == len(stored):
        return [d for i, (a, b) in enumerate(zip(ours, stored, strict=True)) for d in differences(a, b, f"{path}[{i}]")]
    if type(ours) is float and type(stored) is float and _close(np.array([ours]), np.array([stored])):
        return []
    return [] if ours == stored else [f"{path}: {ours!r:.80} != {stored!r:.80}"]


def test_regenerating_gives_the_same_results(
    reference_now: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """regenerate draws the same cases and writes the same results (float values within REGENERATE_ULPS)."""
    monkeypatch.setattr(public, "EXPECTED", tmp_path / "expected.json")
    monkeypatch.setattr(public, "MANIFEST", tmp_path / "manifest.json")
    regenerate.regenerate(retrain_pictures=False)
    ours = json.loads((tmp_path / "expected.json").read_text())
    stored = json.loads((ROOT / "grader" / "public" / "expected.json").read_text())
    assert differences(ours, stored) == []
    assert differences(json.loads(json.dumps(stored).replace('"seed"', '"Seed"', 1)), stored) != []


def test_a_difference_past_the_last_bits_is_one() -> None:
    def doc(values: list[float]) -> dict[str, Any]:
        data = base64.b64encode(np.asarray(values, dtype=np.float64).tobytes()).decode()
        return {"x": {"__array__": {"kind": "numpy", "dtype": "float64", "shape": [2], "device": "cpu", "data": data}}}

    assert differences(doc([0.1, 1e-300]), doc([np.nextafter(0.1, 1.0), 1e-300])) == []
    assert differences(doc([0.1, 1.0]), doc([0.1, 1.0 + 1e-9])) != []
    assert differences({"loss": 0.13507361169438079}, {"loss": 0.1350736116943808}) == []
    assert differences({"loss": 0.135}, {"loss": 0.136}) != [] and differences({"n": 1}, {"n": 2}) != []


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("release") / "bundle"
    release(out)
    return out


def test_release_holds_no_solution_or_reference_code(bundle: Path) -> None:
    files = [p for p in bundle.rglob("*") if p.is_file()]
    names = {str(p.relative_to(bundle)) for p in files}
    assert not any(n.startswith(("solutions", "reference", "grader/checks")) for n in names)
    assert {"grader/grading/run.py", "grader/grading/timing.py", "grader/authoring/generate.py"}.isdisjoint(names)
    # the stubs are the generated ones, which tests/test_generate.py proves free of solution lines
    for stub in (ROOT / "exercises").glob("*.py"):
        assert (bundle / "exercises" / stub.name).read_bytes() == stub.read_bytes()
    others = [p for p in files if p.suffix in (".py", ".md", ".json") and p.parent.name != "exercises"]
    text = "\n".join(p.read_text() for p in others)
    assert "import reference" not in text and "from reference" not in text
    reached = solution_lines() & {line.strip() for line in text.splitlines()}
    assert not reached, f"solution lines reached the release: {reached}"


def run_check(bundle: Path, folder: str) -> subprocess.CompletedProcess[str]:
    code = (
        BLOCK + f"from grader.__main__ import main\nimport grader\nassert grader.__file__.startswith({str(bundle)!r})\n"
    )
    code += f"sys.exit(main(['check', {folder!r}]))\n"
    return subprocess.run([sys.executable, "-c", code], cwd=bundle, capture_output=True, text=True, timeout=600)


def test_check_in_the_release_on_the_stubs_and_on_the_solutions(bundle: Path) -> None:
    checked = sum(cases_of == item.id for item, cases_of in public.stored_items().values())
    stubs = run_check(bundle, "exercises")
    assert stubs.returncode == 1, stubs.stderr
    assert f"0/{checked} items pass their public checks" in stubs.stdout
    shutil.copytree(ROOT / "solutions", bundle / "filled", ignore=shutil.ignore_patterns("__pycache__"))
    filled = run_check(bundle, "filled")
    assert filled.returncode == 0, filled.stdout + filled.stderr
    assert f"{checked}/{checked} items pass their public checks" in filled.stdout
    for said in (stubs.stdout + stubs.stderr, filled.stdout + filled.stderr):  # what a student reads
        assert str(ROOT) not in said and "hidden_check" not in said and "grader/checks" not in said
    unbiased = next(p for p in MUTANTS if (p.item, p.name) == ("mle.gaussian_mle", "unbiased"))
    (bundle / "filled" / "mle.py").write_text(patched(unbiased, ROOT / "solutions"))
    named = run_check(bundle, "filled")  # through the sandbox, as a student's `check` runs
    assert named.returncode == 1 and f"{checked - 1}/{checked} items pass" in named.stdout, named.stdout
    assert "FAIL mle.gaussian_mle" in named.stdout and "This matches a known mistake: dividing by n - 1" in named.stdout


def test_the_bundle_ships_what_its_entry_points_import_and_every_verb_it_offers_works(bundle: Path) -> None:
    shipped = {str(p.relative_to(bundle)) for p in (bundle / "grader").rglob("*.py")}
    derived = {str(p.relative_to(ROOT)) for p in shipped_modules().values()}
    runtime = {str(p.relative_to(ROOT)) for p in (ROOT / "grader" / "runtime").glob("*.py")}
    assert shipped == derived | runtime | {"grader/__main__.py"}
    grading = {
        "grader.checks",
        "grader.grading.run",
        "grader.grading.items",
        "grader.grading.timing",
        "grader.hidden",
        "grader.regenerate",
    }
    assert not grading & set(shipped_modules()) and not any(m.startswith("grader.checks.") for m in shipped_modules())
    helped = subprocess.run([sys.executable, "-m", "grader", "--help"], cwd=bundle, capture_output=True, text=True)
    assert helped.returncode == 0, helped.stderr
    offered = helped.stdout.split("{", 1)[1].split("}", 1)[0].split(",")
    assert offered == ["check", "submit"], offered  # each verb offered is run here
    ran = subprocess.run(
        [sys.executable, "-m", "grader", "check", "exercises"], cwd=bundle, capture_output=True, text=True, timeout=600
    )
    assert ran.returncode == 1 and "items pass their public checks" in ran.stdout, ran.stdout + ran.stderr
    (bundle / "01_mle-Copy1.ipynb").write_bytes((bundle / "01_mle.ipynb").read_bytes())  # a copy beside: not handed in
    handed = subprocess.run(
        [sys.executable, "-m", "grader", "submit", ".", "--out", "mine.zip"], cwd=bundle, capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip
    assert handed.returncode == 0 and "hand in this file" in handed.stdout, handed.stdout + handed.stderr
    assert "items pass their public checks" in handed.stdout  # the public checks ran first
    with zipfile.ZipFile(bundle / "mine.zip") as archive:
        assert sorted(archive.namelist()) == sorted(p.name for p in (ROOT / "exercises" / "notebooks").glob("*.ipynb"))
    (bundle / "01_mle-Copy1.ipynb").unlink()


def test_the_bundle_readme_installs_everything_its_code_and_notebooks_import(bundle: Path) -> None:
    from grader.authoring.release import REQUIREMENTS, imports_in, imports_of

    imported: set[str] = set()
    for path in [*(bundle / "grader").rglob("*.py"), *(bundle / "exercises").glob("*.py")]:
        imported |= {name.split(".")[0] for name in imports_of(path)}
    for notebook in bundle.glob("*.ipynb"):
        for cell in nbformat.read(notebook, as_version=4).cells:
            if cell.cell_type == "code":
                with contextlib.suppress(SyntaxError):  # a cell with IPython magics
                    imported |= {name.split(".")[0] for name in imports_in(cell.source)}
    third_party = {n for n in imported if n not in sys.stdlib_module_names and n not in ("grader", "exercises")}
    third_party -= {p.stem for p in (bundle / "grader" / "runtime").glob("*.py")}  # they import each other by name
    assert third_party <= set(REQUIREMENTS), third_party - set(REQUIREMENTS)
    readme = (bundle / "README.md").read_text()
    assert all(f'"{r}"' in readme for r in REQUIREMENTS.values()) and "python -m grader submit" in readme
    assert (bundle / "CONTRACT.md").read_text() == (ROOT / "CONTRACT.md").read_text()


def test_release_notebooks_check_in_the_kernel_without_the_reference(bundle: Path) -> None:
    assert sorted(p.name for p in bundle.glob("*.ipynb")) == [
        "01_mle.ipynb", "02_divergences.ipynb", "03_vae.ipynb", "04_gan.ipynb", "05_ddpm.ipynb"
    ]  # fmt: skip
    assert all("HIDDEN TESTS" not in p.read_text() for p in bundle.glob("*.ipynb"))
    shutil.copytree(ROOT / "solutions", bundle / "mine", ignore=shutil.ignore_patterns("__pycache__", "notebook*"))
    code = BLOCK + (
        "from grader.kernel import CheckFailed, public_check\n"
        "import exercises.mle as stub, mine.mle as mine\n"
        "public_check('mle.binomial_mle', vars(mine))\n"
        "try:\n    public_check('mle.binomial_mle', vars(stub))\nexcept CheckFailed as failed:\n    print(failed)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=bundle, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "mle.binomial_mle: 4/4 public checks pass." in done.stdout
    assert "mle.binomial_mle: 0/4 public checks pass. Not implemented yet." in done.stdout


def test_release_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("")
    with pytest.raises(FileExistsError):
        release(tmp_path)
