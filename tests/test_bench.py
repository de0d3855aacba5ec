"""The benchmark command: results that match the theory, landmark files read as documented,
peers mapped to our convention, clear errors on bad input."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

import landmark_codecs as lc
from landmark_codecs import bench
from landmark_codecs.__main__ import main
from landmark_codecs.bench import _speed

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"


def _rows(landmarks=None, **kw):
    return {(r.codec, r.size): r for r in bench.run(landmarks, **kw)}


def test_quantization_errors_match_theory():
    rows = _rows(bench.synthetic_landmarks(samples=125), sizes=(16, 64))
    # Uniform sub-pixel positions: rounding to the nearest pixel gives E|e| = 0.3826 px (2-D).
    assert rows["argmax", 64].mean_error_heatmap_px == pytest.approx(0.3826, abs=0.02)
    # The exact codecs lose only the half-pixel border bands (2 of 64 px per axis are clamped).
    assert rows["h3r:expected=True", 64].mean_error_heatmap_px < 0.02
    assert rows["soft_argmax", 64].mean_error_heatmap_px == pytest.approx(
        rows["h3r:expected=True", 64].mean_error_heatmap_px, rel=1e-6
    )
    assert rows["quarter:rounding=none", 64].mean_error_heatmap_px < rows["argmax", 64].mean_error_heatmap_px
    assert rows["argmax", 16].mean_error_image_px == pytest.approx(4 * rows["argmax", 64].mean_error_image_px, rel=0.1)
    # DARK, UDP, SimCC (1-D DARK) and PIPNet (offsets at the cell) return every landmark, borders included.
    for name in ("dark", "udp", "simcc", "pipnet"):
        assert rows[name, 16].max_error_image_px < 1e-9 and rows[name, 64].max_error_image_px < 1e-9, name
    # A sampled H3R target is off by the rounding alone: at most one pixel per axis.
    assert rows["h3r", 64].max_error_image_px <= math.sqrt(2) * 4 + 1e-9


def test_mmpose_families_rows_udp_combined_exact_megvii_quantized_regression_refused():
    """UDP's combined codec returns every landmark (its offsets are exact at any pixel); Megvii's
    target is on the nearest pixel, so its error is the rounding's, E|e| = 0.3826 heatmap px; the
    regression codec has no resolution to sweep and says so."""
    landmarks = bench.synthetic_landmarks(samples=125)
    rows = _rows(landmarks, codecs=["udp_combined", "megvii"], sizes=(4, 64))
    assert rows["udp_combined", 4].max_error_image_px < 1e-9 and rows["udp_combined", 64].max_error_image_px < 1e-9
    assert rows["megvii", 64].mean_error_heatmap_px == pytest.approx(0.3826, abs=0.02)
    realistic = bench.run(
        landmarks, codecs=["udp_combined"], sizes=(32,), model="realistic", noise=0.0, displacement=0.25
    )[0]
    assert realistic.mean_error_image_px == pytest.approx(0.25 * math.sqrt(math.pi / 2) * 255 / 31, rel=0.03)
    with pytest.raises(ValueError, match="codec 'regression' regresses coordinates: it has no heatmap resolution"):
        bench.run(landmarks, codecs=["regression"], sizes=(4,))


@pytest.mark.parametrize("codec", ["dark", "udp", "simcc", "pipnet", "h3r:expected=True:activation=window"])
def test_realistic_model_without_noise_is_the_displacement_alone(codec):
    """An exact codec decodes the displaced landmark: its error is |d|, d ~ N(0, 0.25^2 I) heatmap px
    (bins, cells), whose mean is 0.25 sqrt(pi / 2) = 0.3133 (clamping at the border only shortens it).
    A heatmap pixel is 256 / 32 image px, UDP's (256 - 1) / (32 - 1)."""
    landmarks = bench.synthetic_landmarks(samples=250)
    row = bench.run(landmarks, codecs=[codec], sizes=(32,), model="realistic", noise=0.0, displacement=0.25)[0]
    assert row.model == "realistic"
    pixel = 255 / 31 if codec == "udp" else 8
    assert row.mean_error_image_px == pytest.approx(0.25 * math.sqrt(math.pi / 2) * pixel, rel=0.03)
    # With no displacement either, the realistic model is the noise-free one.
    still = bench.run(landmarks, codecs=[codec], sizes=(32,), model="realistic", noise=0.0, displacement=0.0)[0]
    exact = bench.run(landmarks, codecs=[codec], sizes=(32,))[0]
    assert (
        still.mean_error_image_px == exact.mean_error_image_px and still.max_error_image_px == exact.max_error_image_px
    )


def test_realistic_model_is_seeded_and_noise_makes_errors_worse():
    landmarks = bench.synthetic_landmarks(samples=40)
    kw = dict(codecs=["dark", "pipnet"], sizes=(16,), model="realistic")
    quiet, noisy = bench.run(landmarks, noise=0.0, **kw), bench.run(landmarks, noise=0.1, seed=3, **kw)
    assert noisy == bench.run(landmarks, noise=0.1, seed=3, **kw)
    assert noisy != bench.run(landmarks, noise=0.1, seed=4, **kw)
    assert all(n.mean_error_image_px > q.mean_error_image_px for n, q in zip(noisy, quiet))


def test_pipnet_offset_noise_broadcast_over_cells_decodes_as_per_cell_noise():
    """The realistic model draws PIPNet's offset noise once per map: decoding reads each offset map at
    one cell, so per-cell noise decodes exactly as its value at the read cell, broadcast."""
    rng = np.random.default_rng(0)
    coords = rng.uniform(-0.5, 7.5, size=(3, 12, 2))
    table = lc.pipnet_neighbors(coords[0], num_neighbors=4)
    t = lc.encode_pipnet(coords, grid_size=(8, 8), neighbors=table)
    scores = t.scores + rng.normal(0, 0.2, t.scores.shape)
    noise_o, noise_n = rng.normal(0, 0.1, t.offsets.shape), rng.normal(0, 0.1, t.neighbor_offsets.shape)
    cell = scores.reshape(3, 12, 64).argmax(-1)  # the cell decoding reads, per landmark
    at_o = np.take_along_axis(noise_o.reshape(3, 12, 2, 64), cell[:, :, None, None], -1)[..., None]
    at_n = np.take_along_axis(noise_n.reshape(3, 12, 4, 2, 64), cell[:, :, None, None, None], -1)[..., None]
    per_cell = lc.decode_pipnet(scores, t.offsets + noise_o, t.neighbor_offsets + noise_n, neighbors=table)[0]
    broadcast = lc.decode_pipnet(scores, t.offsets + at_o, t.neighbor_offsets + at_n, neighbors=table)[0]
    np.testing.assert_array_equal(per_cell, broadcast)


def test_torch_backend_decodes_the_same_targets():
    pytest.importorskip("torch")
    landmarks = bench.synthetic_landmarks(samples=20)
    kw = dict(sizes=(8, 32), model="realistic")
    for ours, theirs in zip(bench.run(landmarks, **kw), bench.run(landmarks, backend="torch", **kw)):
        assert (ours.codec, ours.size) == (theirs.codec, theirs.size)
        assert theirs.mean_error_image_px == pytest.approx(ours.mean_error_image_px, rel=1e-9, abs=1e-12), ours.codec


def test_nme_is_mean_error_over_the_eye_corner_distance():
    # Faces that only translate: every face has the same inter-ocular distance, so NME = 100 * mean / IOD.
    rng = np.random.default_rng(0)
    shape = rng.uniform(40, 200, size=(6, 2))
    coords = shape + rng.uniform(-20, 20, size=(100, 1, 2))
    iod = float(np.linalg.norm(shape[1] - shape[4]))
    landmarks = bench.Landmarks(coords, 256, (1, 4), "test faces")
    for r in bench.run(landmarks, codecs=["argmax", "quarter"], sizes=(8, 32)):
        assert r.nme_percent == pytest.approx(100 * r.mean_error_image_px / iod, rel=1e-12)
    assert all(
        r.nme_percent is None for r in bench.run(bench.synthetic_landmarks(samples=4), codecs=["argmax"], sizes=(8,))
    )


def test_landmarks_outside_the_crop_are_left_out():
    inside = np.array([[[10.3, 20.7], [100.2, 50.9]]])
    outside = np.concatenate([inside, [[[300.0, 20.0], [np.nan, 5.0]]]], axis=1)
    one = bench.run(bench.Landmarks(inside, 256, None, "in"), codecs=["argmax", "pipnet"], sizes=(16,))
    two = bench.run(bench.Landmarks(outside, 256, None, "in and out"), codecs=["argmax", "pipnet"], sizes=(16,))
    assert [r.mean_error_image_px for r in two] == pytest.approx(
        [r.mean_error_image_px for r in one], rel=1e-12, abs=1e-12
    )


def test_npy_keypoints_are_read_in_crop_pixels(tmp_path):
    coords = np.random.default_rng(1).uniform(0, 255, size=(5, 68, 2))
    np.save(tmp_path / "faces.npy", coords)
    got = bench.load_keypoints(tmp_path / "faces.npy")
    np.testing.assert_array_equal(got.coords, coords)
    assert got.eye_corners == (36, 45) and "5 x 68" in got.description
    assert bench.load_keypoints(tmp_path / "faces.npy", eye_corners=(39, 42)).eye_corners == (39, 42)


def test_csv_faces_are_cropped_from_centre_and_scale(tmp_path):
    # side = 2 * 200 * 1.25 = 500 px: the centre lands on the crop's centre, +250 px on its right edge.
    rows = ["image_name,scale,center_w,center_h," + ",".join(f"x{i},y{i}" for i in range(3))]
    rows.append("a.jpg,2.0,400,300,400,300,650,300,400,50")
    rows.append("b.jpg,1.0,100,100,100,100,125,100,100,75")
    (tmp_path / "faces.csv").write_text("\n".join(rows) + "\n")
    got = bench.load_keypoints(tmp_path / "faces.csv", image_size=256)
    np.testing.assert_allclose(got.coords[0], [[127.5, 127.5], [255.5, 127.5], [127.5, -0.5]])
    np.testing.assert_allclose(
        got.coords[1], [[127.5, 127.5], [127.5 + 25 * 256 / 250, 127.5], [127.5, 127.5 - 25 * 256 / 250]]
    )
    assert got.eye_corners is None


def test_mean_shape_gives_jittered_copies_with_default_eye_corners():
    got = bench.load_keypoints("300w68", samples=50, seed=2)
    assert got.coords.shape == (50, 68, 2) and got.eye_corners == (36, 45)
    assert got.coords.std(axis=0).min() > 1.0  # every landmark moves, so sub-pixel positions vary
    np.testing.assert_array_equal(got.coords, bench.load_keypoints("300w68", samples=50, seed=2).coords)
    assert bench.load_keypoints("wflw98", samples=2).eye_corners == (60, 72)
    assert bench.load_keypoints("aflw19", samples=2).eye_corners is None
    rows = bench.run(got, codecs=["dark", "pipnet", "argmax"], sizes=(8,))
    assert rows[0].nme_percent < 1e-9 and rows[1].nme_percent < 1e-9 and rows[2].nme_percent > 1


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("bad.csv", "a.jpg,1,2,3,4\n", "line 1: expected image_name, scale, center_w, center_h, then x y pairs"),
        ("ragged.csv", "a.jpg,1,2,3,4,5\nb.jpg,1,2,3,4,5,6,7\n", "line 2: 8 columns, the first data row has 6"),
        ("words.csv", "a.jpg,1,2,3,4,5\nb.jpg,1,2,3,x,5\n", "line 2: expected numbers after image_name"),
        ("zero.csv", "a.jpg,0,2,3,4,5\n", "every scale must be positive and finite"),
        ("inf.csv", "a.jpg,inf,2,3,4,5\n", "every scale must be positive and finite"),
        ("odd.txt", "0.1 0.2 0.3", "expected an even number (2K) of values"),
        ("faces.json", "{}", "expected a .npy, .csv or .txt file, got '.json'"),
    ],
)
def test_bad_keypoint_files_name_the_file_and_what_was_expected(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(ValueError, match="keypoints file") as info:
        bench.load_keypoints(tmp_path / name)
    assert message in str(info.value) and name in str(info.value)


def test_eye_corners_outside_the_set_are_refused():
    landmarks = bench.Landmarks(np.full((2, 5, 2), 10.0), 256, (1, 5), "five points")
    with pytest.raises(ValueError, match=r"two different eye-corner indices in \[0, 5\), got 1,5"):
        bench.run(landmarks, codecs=["argmax"], sizes=(8,))


def test_npy_of_the_wrong_shape_is_refused(tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros((5, 136)))
    with pytest.raises(ValueError, match=r"expected a real \(N, K, 2\) array, got float64 \(5, 136\)"):
        bench.load_keypoints(tmp_path / "flat.npy")
    np.save(tmp_path / "complex.npy", np.zeros((2, 3, 2), dtype=complex))
    with pytest.raises(ValueError, match=r"complex.npy.*expected a real \(N, K, 2\) array, got complex128"):
        bench.load_keypoints(tmp_path / "complex.npy")
    (tmp_path / "empty.npy").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty.npy' is not a readable .npy array"):
        bench.load_keypoints(tmp_path / "empty.npy")


def test_non_utf8_csv_names_the_file(tmp_path):
    (tmp_path / "latin.csv").write_bytes(b"a\xff.jpg,1,2,3,4,5\n")
    with pytest.raises(ValueError, match=r"latin.csv' is not UTF-8 text"):
        bench.load_keypoints(tmp_path / "latin.csv")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seed", "-1"], "argument --seed: expected an integer >= 0, got '-1'"),
        (["--image-size", "-256"], "argument --image-size: expected an integer >= 2, got '-256'"),
        (["--samples", "0"], "argument --samples: expected an integer >= 1, got '0'"),
        (["--noise", "inf"], "argument --noise: expected a finite number >= 0, got 'inf'"),
        (["--displacement", "nan"], "argument --displacement: expected a finite number >= 0, got 'nan'"),
        (["--sizes", ","], "argument --sizes: expected comma-separated positive sizes, got ','"),
        (["--sizes", "0,8"], "argument --sizes: expected comma-separated positive sizes, got '0,8'"),
        (["--codecs", ","], "argument --codecs: expected comma-separated codecs from argmax"),
        (["--backend", "torch", "--device", "meta"], "--device meta holds no values to measure"),
    ],
)
def test_bad_options_name_the_option_in_one_line(capsys, args, message):
    if "torch" in args:
        pytest.importorskip("torch")
    try:
        code = main(["bench", *args])
    except SystemExit as exit_:  # argparse's errors exit; the run's own return 2
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_cli_prints_a_table_per_model(capsys):
    assert main(["bench", "--sizes", "8,16", "--samples", "10", "--codecs", "argmax,soft_argmax"]) == 0
    out = capsys.readouterr().out
    blocks = out.split("\n\n")
    assert (
        len(blocks) == 2 and "noise-free" in blocks[0] and "realistic" in blocks[1] and "displacement 0.25" in blocks[1]
    )
    assert "soft_argmax" in out and "16x16" in out and "h3r" not in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--codecs", "dsnt"], "unknown codec 'dsnt' in 'dsnt'"),
        (["--sizes", "512"], "heatmap size 512 must be between 2 and the crop size 256"),
        (["--keypoints", "no/such/file.npy"], "keypoints file 'no/such/file.npy' does not exist"),
        (["--landmarks", "1,2"], "--landmarks needs --keypoints"),
        (["--landmarks", "1"], "expected two comma-separated indices I,J, got '1'"),
        (["--device", "cuda"], "--device cuda needs --backend torch"),
        (["--noise", "-1"], "argument --noise: expected a finite number >= 0, got '-1'"),
        (["--model", "perfect"], "invalid choice: 'perfect'"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(capsys, args, message):
    assert _exit_code(["bench", "--sizes", "4", "--samples", "2", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1, err


def test_cli_keypoint_file_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "faces.csv").write_text("a.jpg,1,2,3,4,5,6\n")
    assert main(["bench", "--keypoints", str(tmp_path / "faces.csv")]) == 2
    np.save(tmp_path / "faces.npy", np.zeros((2, 10, 2)))
    assert main(["bench", "--keypoints", str(tmp_path / "faces.npy"), "--landmarks", "3,10"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "7 columns" in err[0] and "two different eye-corner indices in [0, 10), got 3,10" in err[1]


def test_cli_torch_device_that_is_not_there_is_one_line(capsys):
    pytest.importorskip("torch")
    assert main(["bench", "--sizes", "4", "--samples", "2", "--backend", "torch", "--device", "nonsense"]) == 2
    err = capsys.readouterr().err
    assert "--device 'nonsense' is not usable" in err and err.count("\n") == 1


def test_progress_bar_on_request_and_not_by_default_off_a_terminal(capsys):
    assert (
        main(["bench", "--sizes", "4,8", "--samples", "2", "--codecs", "argmax", "--model", "noise-free", "--progress"])
        == 0
    )
    pytest.importorskip("tqdm")
    err = capsys.readouterr().err
    assert "noise-free argmax 8x8" in err and "2/2" in err and err.endswith("\n")  # the last state, drawn by tqdm
    assert main(["bench", "--sizes", "4", "--samples", "2", "--codecs", "argmax"]) == 0
    assert capsys.readouterr().err == ""


def test_progress_bar_without_tqdm_says_so_when_asked(capsys, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_tqdm(name, *args, **kwargs):
        if name == "tqdm":
            raise ImportError("no tqdm")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    assert (
        main(["bench", "--sizes", "4", "--samples", "2", "--codecs", "argmax", "--model", "noise-free", "--progress"])
        == 0
    )
    assert "no progress bar: tqdm is not installed" in capsys.readouterr().err


def test_module_entry_point_runs():
    done = subprocess.run(
        [sys.executable, "-m", "landmark_codecs", "bench", "--sizes", "4", "--samples", "3", "--model", "noise-free"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and "4x4" in done.stdout
    row = next(line for line in done.stdout.splitlines() if line.startswith("argmax "))
    assert np.isfinite(float(row.split()[1].rstrip("*=")))  # argmax's 4x4 figure


def test_cli_out_writes_the_rows_and_a_plot_per_model(tmp_path, capsys):
    args = ["bench", "--sizes", "4,16", "--samples", "6", "--codecs", "argmax,dark", "--out", str(tmp_path / "res")]
    assert main(args) == 0
    data = json.loads((tmp_path / "res" / "results.json").read_text())
    landmarks = bench.synthetic_landmarks(samples=6)
    want = [r for m in bench.MODELS for r in bench.run(landmarks, codecs=["argmax", "dark"], sizes=(4, 16), model=m)]
    assert data["rows"] == [r.__dict__ for r in want]
    with (tmp_path / "res" / "results.csv").open(newline="") as f:
        table = list(csv.DictReader(f))
    # the long table: every row, every field ("" where a figure does not apply)
    assert [(t["model"], t["codec"], int(t["size"])) for t in table] == [(r.model, r.codec, r.size) for r in want]
    assert [float(t["mean_error_image_px"]) for t in table] == [r.mean_error_image_px for r in want]
    assert {t["nme_percent"] for t in table} == {""} and {t["verdict"] for t in table} <= {"best", "tied", ""}
    assert (
        data["config"]["sizes"] == [4, 16] and data["config"]["noise"] == 0.05 and data["config"]["keypoints"] is None
    )
    from landmark_codecs.bench import _plots

    for model in bench.MODELS:
        png = tmp_path / "res" / f"error-{model}.png"
        assert png.read_bytes().startswith(b"\x89PNG")
        # the figure draws exactly these rows (its Source digest), not pixels compared across machines
        assert _plots.figure_source(png) == _plots.data_digest([r for r in data["rows"] if r["model"] == model])
    assert "wrote" in capsys.readouterr().out


def test_error_plot_draws_every_codec_with_its_own_style_and_zero_on_the_floor():
    rows = bench.run(
        bench.synthetic_landmarks(samples=4), codecs=["argmax", "quarter", "dark", "udp"], sizes=(4, 8, 16)
    )
    from landmark_codecs.bench import _plots

    fig = _plots.error_plot(rows, title="a title long enough to need wrapping " * 5)
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["argmax", "quarter", "dark", "udp"]
    assert len({(line.get_linestyle(), line.get_marker()) for line in lines}) == 4  # coinciding lines stay visible
    for line in lines:
        mine = [r for r in rows if r.codec == line.get_label()]
        assert list(line.get_xdata()) == [4, 8, 16]
        assert list(line.get_ydata()) == [max(r.mean_error_image_px, 1e-6) for r in mine]
    assert "\n" in fig.get_suptitle()  # wrapped to fit
    _plots.pyplot().close(fig)


def test_cli_out_without_matplotlib_writes_the_json_and_says_so(tmp_path, capsys, monkeypatch):
    from landmark_codecs.bench import _plots

    def missing():
        raise ImportError("no matplotlib")

    monkeypatch.setattr(_plots, "pyplot", missing)
    assert main(["bench", "--sizes", "4", "--samples", "2", "--codecs", "argmax", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv", "results.json"]
    assert "no plots: matplotlib is not installed" in capsys.readouterr().out


def test_cli_out_that_cannot_be_written_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["bench", "--sizes", "4", "--samples", "2", "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert "cannot write to" in err and "Traceback" not in err and err.count("\n") == 1


@pytest.mark.slow  # importing the peers (face-alignment pulls numba and scikit-image) takes ~10 s
@pytest.mark.parametrize("peer", _speed.PEERS, ids=lambda p: p.name)
def test_peer_coordinates_map_to_ours(peer):
    """Each peer, run as its users run it, gives our coordinates after the documented conversion,
    wherever it computes the same thing (``peer.margin``, ``peer.clean``: see _speed.Peer)."""
    coords, target, logits = _speed.reference_inputs(peer.codec)
    codec = _speed.speed_codec(peer.codec, coords)
    if peer.clean:
        target = tuple(np.asarray(t, dtype=np.float32) for t in codec.encode(coords).outputs)
    try:  # a peer that cannot be imported or set up, for any reason, skips with the reason
        decode = peer.prepare(logits, target[0])
    except Exception as err:
        pytest.skip(f"{peer.module} cannot be used here: {type(err).__name__}: {err}")
    ours = codec.to_heatmap(codec.decode(*target).coords)  # heatmap px, as to_ours gives
    theirs = peer.to_ours(decode())
    inner = np.all((ours >= peer.margin) & (ours <= _speed.SIZE - 1 - peer.margin), axis=-1)
    assert inner.mean() > 0.5
    np.testing.assert_allclose(theirs[inner], ours[inner], atol=peer.atol)


def test_speed_reports_ratios_and_notes_absent_peers(monkeypatch):
    missing = _speed.Peer("nowhere decode", "no_such_module_for_landmark_codecs", "argmax", None, None, "")
    monkeypatch.setattr(_speed, "PEERS", (*_speed.PEERS, missing))
    report = _speed.run_speed(codecs=["argmax", "pipnet"], repeat=1)
    lines = report.splitlines()
    row = next(line for line in lines if line.startswith("argmax "))
    assert len(row.split()) == 5 and row.split()[2].endswith("x") and float(row.split()[4][:-1]) > 0
    assert any(line.startswith("pipnet ") for line in lines)
    assert "skipped: nowhere decode: not installed (pip install no-such-module-for-landmark-codecs)" in lines
    with pytest.raises(ValueError, match=r"unknown codec 'dsnt' in 'dsnt'; choose from argmax"):
        _speed.run_speed(codecs=["dsnt"])


def _exit_code(argv):
    try:
        return main(argv)
    except SystemExit as done:  # argparse's own errors
        return done.code


def test_packaged_mean_shapes_are_pipnets_and_load_by_name_or_file(tmp_path):
    """The package ships the four mean faces, so nothing needs ../shared/data; they are those
    files byte for byte where that folder exists."""
    for name, k in zip(bench.MEAN_SHAPES, (68, 98, 29, 19)):
        shape = bench.mean_shape(name)
        assert shape.shape == (k, 2) and ((shape > -0.1) & (shape < 1.1)).all()
        by_name = bench.load_keypoints(name, samples=3, seed=1)
        assert by_name.description.startswith(f"3 x {k} landmarks from meanface_{name}.txt")
        shared = SHARED / f"meanface_{name}.txt"
        if shared.is_file():
            np.testing.assert_array_equal(bench.load_keypoints(shared, samples=3, seed=1).coords, by_name.coords)
            np.testing.assert_array_equal(np.loadtxt(shared).reshape(-1, 2), shape)
    with pytest.raises(ValueError, match="mean shape name must be one of 300w68"):
        bench.mean_shape("300w")
    with pytest.raises(
        FileNotFoundError, match="nor is it a packaged shape: 300w68, wflw98, cofw29, aflw19, coco17, mpii16"
    ):
        bench.load_keypoints(tmp_path / "wflw98.txt")


def test_softmax_codecs_are_perturbed_as_logits_with_the_stated_mass_and_noise():
    """The realistic model of softmax-decoded codecs: log((1 - m) p + m / (H W)) + N(0, s^2) with
    m = 0.1 noise and s = 10 noise; its softmax puts m (times E[exp(noise)]) off the target."""
    rng = np.random.default_rng(0)
    target, _ = lc.encode_randomized_rounding(
        rng.uniform(5, 58, size=(200, 4, 2)), heatmap_size=(64, 64), expected=True
    )
    logits = bench.perturbed(target, "logits", 0.05, np.random.default_rng(1), lambda a: a)
    off = target == 0
    background = logits[off] - np.log(0.005 / 4096)
    assert abs(background.mean()) < 0.01 and background.std() == pytest.approx(0.5, rel=0.01)
    p = np.exp(logits - logits.max(axis=(-2, -1), keepdims=True))
    p /= p.sum(axis=(-2, -1), keepdims=True)
    mass = (p * off).sum(axis=(-2, -1))
    assert np.median(mass) == pytest.approx(0.005 * np.exp(0.5**2 / 2), rel=0.1)
    exact = bench.perturbed(target, "logits", 0.0, rng, lambda a: a)
    assert np.isneginf(exact[off]).all() and np.allclose(exact[~off], np.log(target[~off]))


def test_realistic_error_of_the_softmax_decoders_falls_with_the_map_size():
    """A sane decoder's image-pixel error falls as the map grows (the old model, noise on the
    probabilities, made top-k and soft-argmax grow instead)."""
    landmarks = bench.load_keypoints("300w68", samples=16)
    rows = _rows(
        landmarks,
        codecs=["h3r:expected=True", "h3r:expected=True:activation=window", "soft_argmax"],
        sizes=(8, 32, 128),
        model="realistic",
    )
    for codec in ("h3r:expected=True", "h3r:expected=True:activation=window", "soft_argmax"):
        errors = [rows[codec, s].mean_error_image_px for s in (8, 32, 128)]
        assert errors[0] > errors[1] > errors[2], (codec, errors)
        assert rows[codec, 128].nme_percent < 0.7, codec


def test_faces_get_the_failure_rate_and_exact_auc():
    """With every face under the threshold, AUC@0.1 = mean(0.1 - nme) / 0.1 = 1 - NME% / 10
    exactly; with every face over it, FR is 1 and AUC 0. Synthetic points have neither."""
    rows = _rows(
        bench.load_keypoints("300w68", samples=20), codecs=["dark", "argmax"], sizes=(4, 64), model="realistic"
    )
    good, bad = rows["dark", 64], rows["argmax", 4]
    assert good.failure_rate == 0.0 and good.auc == pytest.approx(1 - good.nme_percent / 10, rel=1e-12)
    assert bad.failure_rate == 1.0 and bad.auc == 0.0
    plain = bench.run(bench.synthetic_landmarks(samples=3), codecs=["argmax"], sizes=(8,))[0]
    assert plain.failure_rate is None and plain.auc is None
    table = bench.format_table([good, bad], landmarks="faces")
    header = next(line for line in table.splitlines() if line.startswith("codec"))
    assert "  FR@0.1  AUC@0.1" in header and "FR@0.1" not in bench.format_table([plain], landmarks="points")


def test_the_timing_helper_warms_up_interleaves_and_divides_by_number():
    from landmark_codecs.bench._timing import device_sync, median_times

    order, syncs = [], []
    got = median_times(
        {"a": lambda: order.append("a"), "b": lambda: order.append("b")},
        repeat=3,
        number=2,
        sync=lambda: syncs.append(1),
    )
    assert order == ["a", "b"] + ["a", "a", "b", "b"] * 3  # one warm-up each, then rounds of both in turn
    assert set(got) == {"a", "b"} and all(t >= 0 for t in got.values())
    assert len(syncs) == 1 + 3 * 2 * 2  # after the warm-up, before and after every timed call
    with pytest.raises(ValueError, match="repeat and number must be >= 1"):
        median_times({"a": lambda: None}, repeat=0)
    device_sync("cpu")()  # a no-op without CUDA


def test_gpu_script_runs_its_cpu_checkable_parts(tmp_path, capsys):
    """benchmarks/gpu.py without a GPU: every call timed in both dtypes with bandwidth figures,
    the graph check marked not applicable, and the JSON written (the CUDA tests step is the
    subprocess `pytest -k cuda`, left out here to keep the suite fast)."""
    import importlib.util

    pytest.importorskip("torch")
    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"
    spec = importlib.util.spec_from_file_location("gpu_benchmark", path)
    gpu = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu)
    out = tmp_path / "gpu.json"
    assert gpu.main(["--device", "cpu", "--batch", "2", "--repeat", "1", "--skip-tests", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["device"].startswith("CPU") and report["copy_GB/s"] > 0
    for dtype in ("float32", "float16"):
        rows = report[dtype]
        assert {"decode_argmax", "decode_dark", "encode_gaussian", "decode_pipnet"} <= set(rows)
        assert all(r["ms"] > 0 for r in rows.values())
        assert all(r["cuda_graph"] == "n/a" for name, r in rows.items() if name.startswith("decode"))
        assert all(0 < r["fraction_of_copy"] for r in rows.values() if r["GB/s"] is not None)
    assert gpu.main(["--device", "cuda:0", "--skip-tests", "--out", str(out)]) == (
        0 if __import__("torch").cuda.is_available() else 2
    )


# --- human pose layouts and the verdict ------------------------------------------------------


@pytest.mark.parametrize("name", list(lc.POSE_LAYOUTS))
def test_pose_layouts_are_consistent_trees_whose_flip_mirrors_the_skeleton(name):
    layout = lc.pose_layout(name)
    shape = lc.mean_shape(name)
    k = len(layout.keypoints)
    assert shape.shape == (k, 2) and len(layout.parents) == k and layout.name == name
    flip = layout.flip_index
    assert sorted(flip) == list(range(k)) and all(flip[flip[i]] == i for i in range(k))  # an involution
    for i, j in layout.flip_pairs:  # a pair swaps left and right names
        a, b = sorted([layout.keypoints[i], layout.keypoints[j]])
        assert a.startswith("left_") and b == "right_" + a.removeprefix("left_")
    assert layout.parents.count(-1) == 1
    for j in range(k):  # every keypoint reaches the root: a tree, no cycle
        seen = {j}
        while layout.parents[j] >= 0:
            j = layout.parents[j]
            assert j not in seen
            seen.add(j)
    # the standing skeleton is left-right symmetric, so flipping it with the layout's pairs gives
    # it back: the pairs agree with the geometry (the person's left on the image's right)
    px = shape * 100 - 0.5
    assert np.allclose(lc.flip_horizontal(px, width=100, flip_index=flip), px, atol=1e-12)
    left = [i for i, n in enumerate(layout.keypoints) if n.startswith("left_")]
    assert all(px[i, 0] > px[flip[i], 0] for i in left)


def test_pose_layouts_agree_with_the_metrics_tables():
    assert len(lc.pose_layout("coco17").keypoints) == len(lc.metrics.COCO_SIGMAS)
    mpii = lc.pose_layout("mpii16")
    assert set(range(16)) - set(mpii.reported) == set(lc.metrics.MPII_UNREPORTED)
    assert [mpii.keypoints[j] for j in lc.metrics.MPII_UNREPORTED] == ["pelvis", "thorax"]
    with pytest.raises(ValueError, match="pose layout name must be one of coco17, mpii16, got 'coco'"):
        lc.pose_layout("coco")


@pytest.mark.parametrize("name", list(lc.POSE_LAYOUTS))
def test_articulated_poses_keep_their_bone_lengths_and_vary_their_limbs(name):
    layout = lc.pose_layout(name)
    got = bench.load_keypoints(name, samples=40)
    assert got.layout == name and f"scored as {name}" in got.description and got.eye_corners is None
    bones = [(j, p) for j, p in enumerate(layout.parents) if p >= 0]
    canonical = np.array([np.linalg.norm(np.subtract(*lc.mean_shape(name)[[j, p]])) for j, p in bones])
    lengths = np.stack([np.linalg.norm(got.coords[:, j] - got.coords[:, p], axis=-1) for j, p in bones], axis=1)
    ratio = lengths / canonical
    # turning bones and a similarity jitter keep every bone's length up to the copy's one scale
    assert np.allclose(ratio, ratio[:, :1], rtol=1e-9) and 0.9 * 256 <= ratio.min() <= ratio.max() <= 1.1 * 256
    # a limb's angle to its parent bone varies across copies (up to 25 degrees per joint)
    elbow = layout.keypoints.index("left_elbow")
    wrist = layout.keypoints.index("left_wrist")

    def bend(coords):  # the forearm's angle to the upper arm, degrees
        fore = coords[..., wrist, :] - coords[..., elbow, :]
        upper = coords[..., elbow, :] - coords[..., layout.parents[elbow], :]
        cross = upper[..., 0] * fore[..., 1] - upper[..., 1] * fore[..., 0]
        return np.degrees(np.arctan2(cross, np.sum(upper * fore, axis=-1)))

    turned = bend(got.coords) - bend(lc.mean_shape(name))
    assert np.ptp(turned) > 20 and np.all(np.abs(turned) <= 25 + 1e-9)


def test_keypoint_files_of_17_and_16_points_are_scored_as_coco_and_mpii(tmp_path):
    for name, k in (("coco17", 17), ("mpii16", 16), ("other", 15)):
        path = tmp_path / f"{name}.npy"
        np.save(path, bench.load_keypoints("coco17", samples=3).coords[:, :k])
        assert bench.load_keypoints(path).layout == {"coco17": "coco17", "mpii16": "mpii16"}.get(name)


def test_coco_rows_report_ap_that_rises_with_resolution():
    rows = _rows(bench.load_keypoints("coco17", samples=24), codecs=["argmax", "dark"], sizes=(4, 64))
    for r in rows.values():
        assert r.nme_percent is None and r.pckh is None and 0 <= r.ap75 <= r.ap50 <= 100 and 0 <= r.ap <= 100
        assert r.ap <= r.ap50
    assert rows["dark", 64].ap > rows["argmax", 4].ap  # 4x4 loses ~16 image px per axis


def test_mpii_per_instance_pckh_is_pckh_of_each_instance_and_pools_to_the_row():
    rng = np.random.default_rng(3)
    truth = bench.load_keypoints("mpii16", samples=12).coords
    decoded = truth + rng.normal(0, 6, truth.shape)
    inside = rng.random(truth.shape[:2]) > 0.1
    units: dict = {}
    got = bench._pose_scores("mpii16", decoded, truth, inside, np.ones(truth.shape[:2]), units, ("c", 8))
    boxes = bench.head_boxes(np.where(inside[..., None], truth, 0.0))
    masked = np.where(inside[..., None], truth, 0.0)
    for i in range(len(truth)):  # one instance at a time through the public metric
        one = lc.metrics.pckh(
            decoded[i : i + 1], masked[i : i + 1], head_boxes=boxes[i : i + 1], weights=inside[i : i + 1]
        )
        assert units["c", 8][i] == pytest.approx(float(one.mean), abs=1e-12)
    counts = (inside & np.isin(np.arange(16), lc.pose_layout("mpii16").reported)).sum(axis=1)
    assert got["pckh"] == pytest.approx(100 * np.sum(units["c", 8] * counts) / counts.sum(), rel=1e-12)
    # MPII's head size: 0.6 x the box diagonal = 0.6 sqrt(2) x the neck-to-top distance
    neck_top = np.linalg.norm(truth[:, 9] - truth[:, 8], axis=-1)
    diagonal = np.linalg.norm(boxes[:, 1] - boxes[:, 0], axis=-1)
    assert np.allclose(diagonal, np.sqrt(2) * np.where(inside[:, 8] & inside[:, 9], neck_top, diagonal / np.sqrt(2)))


def _row(codec, nme, size=8):
    return bench.Row("realistic", codec, size, 1.0, 1.0, 1.0, nme)


def test_verdict_ties_only_what_the_paired_interval_cannot_separate():
    rng = np.random.default_rng(0)
    base = rng.uniform(1, 10, 400)  # per-face NME %, widely spread
    worse = base + 0.05 + rng.normal(0, 0.01, base.size)  # always a little worse: a paired test sees it
    same = base + rng.normal(0, 0.5, base.size)  # as good on average, noisily
    rows = [_row("a", base.mean()), _row("worse", worse.mean()), _row("same", same.mean())]
    units = {("a", 8): base, ("worse", 8): worse, ("same", 8): same}
    # the unpaired spread (sd ~2.6) dwarfs the 0.05 gap: only pairing separates "worse"
    assert abs(worse.mean() - base.mean()) < 1.96 * base.std() / np.sqrt(base.size)
    verdict = {r.codec: r.verdict for r in bench._with_verdicts(rows, units)}
    best = min(rows, key=lambda r: r.nme_percent).codec
    assert verdict[best] == "best" and verdict["worse"] is None
    assert verdict["same" if best == "a" else "a"] == "tied"


def test_verdict_of_a_saturated_figure_ties_all_and_ranks_by_mean_error():
    rows = [dataclasses.replace(_row(c, None), pckh=100.0, mean_error_image_px=e) for c, e in (("x", 2.0), ("y", 1.0))]
    units = {("x", 8): np.ones(5), ("y", 8): np.ones(5)}
    got = bench._with_verdicts(rows, units)
    assert [r.verdict for r in got] == ["tied", "best"]
    text = bench.format_verdict(got, landmarks="poses")
    assert "PCKh@0.5 % (higher is better" in text and "all 2 tied at 100; best (lowest mean error): y" in text


def _verdict_table(text: str) -> tuple[list[str], list[str]]:
    """The figure table's rows and the verdict's lines of one model's block."""
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("codec "))
    end = lines.index("verdict:")
    verdicts = [line for line in lines[end + 1 :] if re.match(r"  \d+x\d+ ", line)]
    return lines[head + 1 : end], verdicts


def test_format_verdict_marks_one_best_per_size_and_footnotes_every_dash():
    rows = bench.run(bench.load_keypoints("300w68", samples=12), codecs=["argmax", "dark", "h3r"], sizes=(4, 16))
    text = bench.format_verdict(rows, landmarks="faces")
    assert "NME % (lower is better" in text
    table, verdicts = _verdict_table(text)
    assert len(table) == 3 and len(verdicts) == 2
    for column in (1, 2):
        cells = [line.split()[column] for line in table]
        assert sum(c.endswith("*") for c in cells) == 1
        assert min(cells, key=lambda c: float(c.rstrip("*="))).endswith("*")
    assert all(" best: " in v for v in verdicts) and "-:" not in text
    holes = [dataclasses.replace(r, nme_percent=None) if r.size == 4 and r.codec == "dark" else r for r in rows]
    text = bench.format_verdict(holes, landmarks="faces")
    table, _ = _verdict_table(text)
    assert table[1].split()[1] == "-" and "\n-: nothing to score at that size" in text


@pytest.mark.parametrize(
    "keypoints, label",
    [(None, "mean error (image px)"), ("300w68", "NME %"), ("coco17", "COCO AP %"), ("mpii16", "PCKh@0.5 %")],
)
def test_cli_ends_each_model_with_a_verdict_per_size_in_100_columns(capsys, keypoints, label):
    args = ["bench", "--sizes", "8,32", "--samples", "8", "--codecs", "argmax,dark,h3r", "--verbose"]
    assert main(args + (["--keypoints", keypoints] if keypoints else [])) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100
    blocks = out.strip().split("\n\n")
    assert len(blocks) == 4  # the long table and the verdict, per model
    for long, verdict in zip(blocks[0::2], blocks[1::2]):
        assert f"\n{label} (" in verdict and "verdict:" not in long
        _, verdicts = _verdict_table(verdict)
        assert [v.split()[0] for v in verdicts] == ["8x8", "32x32"]
        assert all(" best: " in v or "; best (lowest mean error): " in v for v in verdicts)
        for text in (long, verdict):  # a dash only with its footnote
            if any(cell == "-" for line in text.splitlines() for cell in line.split()):
                assert "\n-: " in text or "; -: " in text, text
    if keypoints is None:
        assert "pass --keypoints 300w68" in blocks[1]


def test_help_fits_100_columns_shows_every_default_and_names_the_layouts(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    text = capsys.readouterr().out
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "coco17, mpii16" in text and "300w68" in text
    flat = " ".join(text.split())
    for default in ("(default: 4,8,16,32,64,128)", "(default: both)", "(default: 0.05)", "(default: 0.25)"):
        assert default in flat, default
    for default in ("(default: 256)", "(default: 0)", "(default: numpy)", "(default: argmax, quarter:rounding=none"):
        assert default in flat, default


def test_every_default_codec_gets_its_own_colour_and_marker():
    """The default run draws every codec in a colour and a marker of its own (matplotlib's cycle
    has ten colours: the eleventh line would repeat the first's)."""
    from landmark_codecs.bench import _plots

    styles = [_plots.style(i) for i in range(len(bench.DEFAULT_CODECS))]
    assert len({s["color"] for s in styles}) == len(styles)
    assert len({(s["linestyle"], s["marker"]) for s in styles}) == len(styles)
