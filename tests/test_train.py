"""Short reference training runs on the bundled digits: each learns, and each run writes its pictures and metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from reference import train

STEPS = 120  # a few seconds per model on 2 CPU cores


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict]]:
    out = tmp_path_factory.mktemp("runs")
    return out, {m: train.run(m, out, STEPS, seed=0, progress=False) for m in train.MODELS}


@pytest.mark.slow
@pytest.mark.parametrize("model", ["vae", "ddpm"])
def test_loss_goes_down(runs: tuple[Path, dict[str, dict]], model: str) -> None:
    metrics = runs[1][model]
    key = "total_loss" if model == "vae" else "loss"
    assert metrics["last_20_mean"][key] < 0.9 * metrics["first_20_mean"][key]


@pytest.mark.slow
def test_gan_generator_moves_towards_the_data(runs: tuple[Path, dict[str, dict]]) -> None:
    """A GAN's two losses trade places rather than fall; its progress shows in what G makes."""
    metrics = runs[1]["gan"]
    assert metrics["mean_image_gap_end"] < 0.7 * metrics["mean_image_gap_start"]
    assert metrics["last_20_mean"]["d_loss"] < metrics["log4"]  # D does better than chance


@pytest.mark.slow
@pytest.mark.parametrize("model", train.MODELS)
def test_each_run_writes_pictures_and_metrics(runs: tuple[Path, dict[str, dict]], model: str) -> None:
    folder = runs[0] / model
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["steps"] == STEPS and metrics["model"] == model
    assert all(len(v) == STEPS for v in metrics["history"].values())
    with Image.open(folder / "samples.png") as grid:
        assert grid.size == (8 * 30 + 2, 8 * 30 + 2)  # 8 x 8 tiles of 28 px with 2 px padding
    with Image.open(folder / "loss.png") as curve:
        assert curve.size[0] > 300


def test_cli_rejects_an_unknown_model(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        train.main(["gam"])
    assert "unknown model gam" in capsys.readouterr().err
