"""The benchmark command: results that match the theory, clear errors on bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from landmark_codecs import bench
from landmark_codecs.__main__ import main


def test_quantization_errors_match_theory():
    rows = {(r.codec, r.size): r for r in bench.run(sizes=(16, 64), n_landmarks=2000)}
    # Uniform sub-pixel positions: rounding to the nearest pixel gives E|e| = 0.3826 px (2-D).
    assert rows["argmax", 64].mean_error_heatmap_px == pytest.approx(0.3826, abs=0.02)
    # The exact codecs lose only the half-pixel border bands (2 of 64 px per axis are clamped).
    assert rows["h3r-expected", 64].mean_error_heatmap_px < 0.02
    assert rows["soft-argmax", 64].mean_error_heatmap_px == pytest.approx(rows["h3r-expected", 64].mean_error_heatmap_px, rel=1e-6)
    assert rows["quarter", 64].mean_error_heatmap_px < rows["argmax", 64].mean_error_heatmap_px
    assert rows["argmax", 16].mean_error_image_px == pytest.approx(4 * rows["argmax", 64].mean_error_image_px, rel=0.1)
    # DARK, UDP and SimCC (1-D DARK) decode sub-pixel Gaussian targets exactly, border bands included.
    for name in ("dark", "udp", "simcc"):
        assert rows[name, 16].max_error_image_px < 1e-9 and rows[name, 64].max_error_image_px < 1e-9


def test_noise_makes_errors_worse_and_is_seeded():
    clean = bench.run(codecs=["h3r-expected"], sizes=(32,), n_landmarks=500)
    noisy = bench.run(codecs=["h3r-expected"], sizes=(32,), n_landmarks=500, noise=0.05, seed=3)
    again = bench.run(codecs=["h3r-expected"], sizes=(32,), n_landmarks=500, noise=0.05, seed=3)
    assert noisy[0].mean_error_image_px > clean[0].mean_error_image_px
    assert noisy == again


def test_cli_prints_a_table(capsys):
    assert main(["bench", "--sizes", "8,16", "--landmarks", "200", "--codecs", "argmax,soft-argmax"]) == 0
    out = capsys.readouterr().out
    assert "noise-free" in out and "soft-argmax" in out and "16x16" in out and "h3r" not in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--codecs", "dsnt"], "unknown codec(s) ['dsnt']"),
        (["--sizes", "512"], "heatmap size 512 must be between 1 and the crop size 256"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(capsys, args, message):
    assert main(["bench", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_module_entry_point_runs():
    done = subprocess.run([sys.executable, "-m", "landmark_codecs", "bench", "--sizes", "4", "--landmarks", "50"], capture_output=True, text=True)
    assert done.returncode == 0 and "4x4" in done.stdout
    assert np.isfinite(float(done.stdout.splitlines()[2].split()[2]))


def test_cli_out_writes_the_rows_and_a_plot(tmp_path, capsys):
    args = ["bench", "--sizes", "4,16", "--landmarks", "100", "--codecs", "argmax,dark", "--out", str(tmp_path / "res")]
    assert main(args) == 0
    import json

    data = json.loads((tmp_path / "res" / "results.json").read_text())
    want = bench.run(codecs=["argmax", "dark"], sizes=(4, 16), n_landmarks=100)
    assert data["rows"] == [r.__dict__ for r in want]
    assert data["config"]["sizes"] == [4, 16] and data["config"]["noise"] == 0.0
    svg = (tmp_path / "res" / "error.svg").read_text()
    assert svg.startswith("<svg") and svg.count("<polyline") == 1 + 2  # the axes, then one line per codec
    assert "wrote" in capsys.readouterr().out


def test_cli_out_that_cannot_be_written_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["bench", "--sizes", "4", "--landmarks", "10", "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert "cannot write to" in err and "Traceback" not in err and err.count("\n") == 1
