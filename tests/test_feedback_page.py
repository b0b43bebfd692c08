"""grade --html: the student's feedback page, with pictures of their functions beside the reference's.

The solutions' pictures all match; a sampler that runs forwards (the corpus' mutant) draws samples that
differ; a VAE that raises and a sampler that hangs only on the picture's inputs cost their pictures and
nothing else. The page is opened in headless Chromium (Debian's package; skipped where it is missing):
every image loads, the screenshot is not blank, and the wrong sampler's grid differs from the reference's
where the solution's does not. The stored weights are the ones the manifest records.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from grader.authoring.corpus import MUTANTS, patched
from grader.pictures import page, scenes, weights

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
ITEMS = ("ddpm.p_sample_loop", "vae.VAE", "gan.optimal_discriminator")  # a part each: grading stays short
IMG = re.compile(r'<img alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')
VERDICT = re.compile(r'<span class="verdict">([^<]*)</span>')
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def grade_html(folder: Path, out: Path, *extra: str) -> tuple[str, dict]:
    done = subprocess.run(
        [sys.executable, "-m", "grader", "grade", str(folder), "--items", *ITEMS, "--json", str(out / "grade.json"),
         "--html", str(out / "page.html"), *extra],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return (out / "page.html").read_text(), json.loads((out / "grade.json").read_text())


def submission(folder: Path, **sources: str) -> Path:
    folder.mkdir(parents=True)
    for part in ("ddpm", "vae", "gan"):
        (folder / f"{part}.py").write_text(sources.get(part, (SOLUTIONS / f"{part}.py").read_text()))
    return folder


def verdicts(html: str) -> dict[str, str]:
    titles = re.findall(r"<h3>([^<]*)</h3>", html)
    return dict(zip(titles, VERDICT.findall(html), strict=True))


def images(html: str) -> dict[str, np.ndarray]:
    return {alt: np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("L"), float)
            for alt, data in IMG.findall(html)}  # fmt: skip


def halves(grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The left (reference) and right (yours) panels of the samples picture."""
    width = grid.shape[1]
    return grid[:, : width // 2], grid[:, width - width // 2 :]


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, dict]]:
    base = tmp_path_factory.mktemp("pages")
    forwards = next(m for m in MUTANTS if (m.item, m.name) == ("ddpm.p_sample_loop", "forwards"))
    made = {}
    for name, sources in {"solution": {}, "forwards": {"ddpm": patched(forwards, SOLUTIONS)}}.items():
        out = base / name
        out.mkdir()
        made[name] = grade_html(submission(base / f"{name}-submission", **sources), out)
    return made


def test_the_solutions_pictures_all_match_and_the_page_is_self_contained(pages: dict) -> None:
    html, graded = pages["solution"]
    assert graded["score"] == graded["max_score"] == 8
    assert verdicts(html) == {s.title: "Yours matches the reference&#39;s." for s in scenes.SCENES}
    assert "<script" not in html and not re.search(r'(src|href)="(?!data:)', html)
    drawn = images(html)
    assert set(drawn) == {s.title for s in scenes.SCENES}
    assert all(a.std() > 10 for a in drawn.values()), "a picture is blank"


def test_a_sampler_that_runs_forwards_draws_samples_that_differ(pages: dict) -> None:
    html, graded = pages["forwards"]
    assert {i["id"]: i["status"] for i in graded["items"]}["ddpm.p_sample_loop"] == "failed"
    said = verdicts(html)
    assert said["Samples from p_sample_loop"].startswith("Yours differs from the reference&#39;s")
    assert float(said["Samples from p_sample_loop"].rsplit(" ", 1)[1].rstrip(".")) > 0.5
    others = [v for title, v in said.items() if title != "Samples from p_sample_loop"]
    assert others == ["Yours matches the reference&#39;s."] * (len(scenes.SCENES) - 1)
    # the two pictures are drawn alike: the reference's panels are the same pixels, the students' are not
    title = "Samples from p_sample_loop"
    (reference_w, wrong), (reference_s, right) = (
        halves(images(html)[title]),
        halves(images(pages["solution"][0])[title]),
    )
    assert wrong.shape == right.shape and np.array_equal(reference_w, reference_s)
    assert np.abs(wrong - right).mean() > 10.0  # grey levels of 255, averaged over the panel, margins included


HANGS_ON_THE_PICTURE = """

def p_sample_loop(model, shape, betas, generator=None):  # right on every graded case, hangs on the page's
    import time
    if tuple(shape) == (16, 64):
        while True:
            time.sleep(1)
    return _p_sample_loop(model, shape, betas, generator)
"""
VAE_RAISES = """

def _broken_decode(self, z):
    raise RuntimeError("decoder not finished")
"""


def test_code_that_hangs_or_raises_for_a_picture_costs_that_picture_only(tmp_path: Path) -> None:
    ddpm = (SOLUTIONS / "ddpm.py").read_text().replace("def p_sample_loop(", "def _p_sample_loop(", 1)
    vae = (SOLUTIONS / "vae.py").read_text() + VAE_RAISES + "VAE.decode = _broken_decode\n"
    folder = submission(tmp_path / "s", ddpm=ddpm + HANGS_ON_THE_PICTURE, vae=vae)
    html, graded = grade_html(folder, tmp_path, "--timeout", "3")
    statuses = {i["id"]: i["status"] for i in graded["items"]}
    assert statuses == {"ddpm.p_sample_loop": "passed", "vae.VAE": "error", "gan.optimal_discriminator": "passed"}
    said = verdicts(html)
    assert said["Samples from p_sample_loop"].startswith("Your p_sample_loop: ")
    assert "reference alone" in said["Samples from p_sample_loop"]
    assert "raised RuntimeError: decoder not finished" in said["VAE reconstructions and samples"]
    assert said["The optimal discriminator"] == "Yours matches the reference&#39;s."
    assert len(images(html)) == len(scenes.SCENES)  # the reference's side is drawn in every picture


def test_a_picture_that_cannot_be_drawn_leaves_the_page() -> None:
    broken = scenes.Picture("samples", "Samples", "caption", [np.zeros(3)], None)  # not 16 x 64: drawing fails
    shown = page.shown(broken)
    assert shown.png is None and "could not be drawn" in shown.verdict


def test_the_verdict_says_nan_where_the_student_has_nan_and_same_infinities_agree() -> None:
    def picture(student: list[float], reference: list[float]) -> scenes.Picture:
        return scenes.Picture("schedules", "Schedules", "", [np.array(reference)], [np.array(student)])

    assert page.verdict(picture([1.0, np.inf], [1.0, np.inf])) == "Yours matches the reference's."
    assert "yours has nan (not a number) where the reference's has numbers" in page.verdict(
        picture([np.nan, 1.0], [0.5, 1.0])
    )
    assert page.verdict(picture([np.nan, 1.0], [np.nan, 1.0])) == "Yours matches the reference's."
    assert page.verdict(picture([1.0, 3.0], [1.0, 1.0])).endswith("the largest difference is 2.")
    assert "difference is inf" in page.verdict(picture([1.0, -np.inf], [1.0, np.inf]))


def test_the_stored_weights_are_the_ones_the_manifest_records() -> None:
    from grader import regenerate

    assert regenerate.verify_pictures() == []
    assert weights.FILE.stat().st_size < 400_000  # small enough to live in the repository


def _chromium(html_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHROMIUM or "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--virtual-time-budget=5000", *args, html_file.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


LOADED = """<script>
document.body.setAttribute("data-images", [...document.images].map(i => i.complete && i.naturalWidth > 0).join(","));
</script></body>"""


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian's chromium package)")
@pytest.mark.parametrize("name", ["solution", "forwards"])
def test_in_a_real_browser_every_image_loads_and_the_page_is_not_blank(pages: dict, name: str, tmp_path: Path) -> None:
    html = pages[name][0]
    probe = tmp_path / "probe.html"  # the page with a script that reports on its images (the page has none)
    probe.write_text(re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html).replace("</body>", LOADED))
    dom = _chromium(probe, "--dump-dom").stdout
    loaded = re.search(r'data-images="([^"]*)"', dom)
    assert loaded, dom[-2000:]
    assert loaded.group(1).split(",") == ["true"] * len(scenes.SCENES)

    shot = tmp_path / "page.png"
    page_file = tmp_path / "page.html"
    page_file.write_text(html)
    done = _chromium(page_file, f"--screenshot={shot}", "--window-size=1000,6000")
    assert shot.is_file(), done.stderr[-2000:]
    screen = np.asarray(Image.open(shot).convert("L"), float)
    rows = screen[screen.std(axis=1) > 20]  # rows with content
    assert len(rows) > 0.3 * screen.shape[0], "most of the page rendered blank"
