"""Which file a part is graded from: exact names, and the near misses students hand in (grader/intake/submission.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.intake.submission import find_parts, near_misses, near_part


@pytest.mark.parametrize(
    ("name", "part"),
    [
        ("MLE.py", "mle"), ("Mle copy.py", "mle"), ("01_mle.py", "mle"), ("mle (2).py", "mle"),
        ("01_mle-Copy1.ipynb", "mle"), ("02_divergences (1).ipynb", "divergences"), ("03_VAE-Copy1 (1).ipynb", "vae"),
        ("vae_copy2.py", "vae"), ("ddpm (3).PY", "ddpm"),
        ("mle.py", None), ("01_mle.ipynb", None),  # exact names are not near misses
        ("gan2.py", None), ("notes.txt", None), ("mle.py.bak", None), ("mlee.py", None), ("copy.py", None),
    ],
)  # fmt: skip
def test_near_part(name: str, part: str | None) -> None:
    assert near_part(name) == part


def test_one_near_miss_is_graded_with_a_note_and_several_are_not(tmp_path: Path) -> None:
    for name in ("MLE.py", "vae-Copy1.py", "vae (1).py", "divergences.py", "01_divergences-Copy1.ipynb"):
        (tmp_path / name).write_text("x = 1\n")
    parts, notes = find_parts(tmp_path)
    assert {p: (s.label, s.filename, s.is_notebook) for p, s in parts.items()} == {
        "mle": ("MLE.py", "MLE.py", False),
        "divergences": ("divergences.py", "divergences.py", False),  # the exact name wins over a near miss
    }
    assert notes == ["Graded MLE.py as mle's module: name it mle.py next time."]
    assert near_misses(tmp_path, "vae") == ["vae (1).py", "vae-Copy1.py"]


def test_a_notebook_near_miss_is_made_into_the_parts_module(tmp_path: Path) -> None:
    (tmp_path / "04_gan-Copy1.ipynb").write_text("{}")
    (tmp_path / "ddpm").mkdir()  # a folder is never a part's file
    (tmp_path / "Ddpm.py").symlink_to(tmp_path / "04_gan-Copy1.ipynb")  # nor is a link
    parts, _ = find_parts(tmp_path)
    assert {p: (s.label, s.filename, s.is_notebook) for p, s in parts.items()} == {
        "gan": ("04_gan-Copy1.ipynb", "gan.py", True)
    }


def test_a_folder_that_only_wraps_another_is_unwrapped(tmp_path: Path) -> None:
    from grader.intake.submission import unwrap

    inner = tmp_path / "alice" / "alice"
    inner.mkdir(parents=True)
    (inner / "mle.py").write_text("")
    assert unwrap(tmp_path) == inner  # a zip of a folder of a folder
    (tmp_path / "alice" / "notes.txt").write_text("")
    assert unwrap(tmp_path) == tmp_path / "alice"  # two things inside: not a wrapper
    (tmp_path / "alice" / "notes.txt").unlink()
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "link").symlink_to(inner)
    assert unwrap(linked) == linked  # a link is not followed (an upload's copy holds none anyway)
