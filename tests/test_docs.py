"""The README's example runs and does what it says."""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _run_first_example(page: pathlib.Path) -> dict:
    """Execute the page's first ```python block; return its variables."""
    code = re.search(r"```python\n(.*?)```", page.read_text(), re.S).group(1)
    scope: dict = {}
    exec(compile(code, str(page), "exec"), scope)
    return scope


def test_readme_example_runs_and_round_trips():
    pytest.importorskip("torch")
    scope = _run_first_example(README)
    assert scope["target"].shape == (98, 64, 64) and scope["weight"].shape == (98,)
    # The expected H3R target decodes back to the landmarks (inside the representable range).
    inner = np.all((scope["coords"] >= 0) & (scope["coords"] <= 63), axis=-1)
    np.testing.assert_allclose(scope["xy_image"][0].numpy()[inner], scope["landmarks_xy"][inner], atol=1e-9)


def test_readme_commands_are_the_ci_commands():
    ci = (README.parent / ".ci" / "run").read_text()
    text = README.read_text()
    assert "python -m pytest" in text and "\npython -m pytest\n" in ci
    assert "landmark-codecs bench" in text


def test_losses_page_example_runs():
    """docs/losses.md: the Module equals the function it wraps on the example batch."""
    pytest.importorskip("torch")
    scope = _run_first_example(README.parent / "docs" / "losses.md")
    assert scope["pred"].grad is not None and scope["pred"].grad.shape == (8, 98, 64, 64)
    assert bool(scope["pred"].grad.isfinite().all()) and float(scope["loss"].detach()) > 0


def test_pipnet_page_example_runs():
    """docs/pipnet.md: the example trains (finite gradients) and decodes near the landmarks."""
    torch = pytest.importorskip("torch")
    scope = _run_first_example(README.parent / "docs" / "pipnet.md")
    assert scope["decoded_xy"].shape == (4, 19, 2) and scope["confidence"].shape == (4, 19)
    assert all(bool(torch.isfinite(p.grad).all()) for p in (scope["scores"], scope["offsets"], scope["neighbor_offsets"]))
    # Offsets perturbed by ~0.02 cells (0.64 px at stride 32): decoded within a couple of pixels.
    assert float((scope["decoded_xy"] - scope["landmarks_xy"]).abs().max()) < 3.0


def test_dark_page_example_round_trips():
    """docs/dark_udp_simcc.md: UDP and SimCC decode the example landmarks back."""
    scope = _run_first_example(README.parent / "docs" / "dark_udp_simcc.md")
    np.testing.assert_allclose(scope["udp_xy"], scope["landmarks_xy"], atol=1e-8)
    np.testing.assert_allclose(scope["simcc_xy"], scope["landmarks_xy"], atol=1e-8)


def test_torch_page_example_runs():
    """docs/torch.md: the collate -> loss -> decode loop runs, with gradients and image pixels out."""
    torch = pytest.importorskip("torch")
    scope = _run_first_example(README.parent / "docs" / "torch.md")
    assert scope["targets"].shape == (8, 98, 32, 32) and scope["weights"].shape == (8, 98)
    assert scope["landmarks"].shape == (8, 98, 2) and scope["coords"].requires_grad
    assert scope["net"].weight.grad is not None and bool(torch.isfinite(scope["net"].weight.grad).all())
    # Each sampled H3R target is a Gaussian (sigma=1) of peak 1 at the rounded pixel.
    assert bool((scope["targets"].amax(dim=(-2, -1)) == 1).all())


@pytest.mark.parametrize("run", ["default", "steps1500"])
def test_training_page_tables_are_the_recorded_results(run):
    """docs/training.md's tables are the results.json the command wrote, to the printed digits."""
    import json

    docs = README.parent / "docs"
    data = json.loads((docs / "training" / run / "results.json").read_text())
    page = (docs / "training.md").read_text()
    section = page.split(f"training/{run}/results.json", 1)[1]
    for r in data["results"]:
        row = re.search(rf"^\| {r['codec']} \|(.*)$", section, re.M).group(1).split("|")
        col = sorted({x["size"] for x in data["results"]}).index(r["size"])
        assert float(row[2 * col]) == round(r["nme"], 2) and float(row[2 * col + 1]) == round(r["quantization_nme"], 2), (run, r)


def test_benchmark_page_tables_are_the_commands_output():
    """docs/benchmark.md shows what `landmark-codecs bench` and `--noise 0.05` print today."""
    from landmark_codecs import bench

    page = (README.parent / "docs" / "benchmark.md").read_text()
    block = page.split("```")[1]
    for noise in (0.0, 0.05):
        table = bench.format_table(bench.run(noise=noise), noise=noise)
        assert table in block, f"docs/benchmark.md is stale for noise={noise}: rerun the command"
