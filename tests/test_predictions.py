"""``landmark-codecs bench --predictions``: decoders on saved network outputs, scored with
landmark_codecs.metrics; exact on exact targets; clear errors for bad files."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import landmark_codecs as lc
from landmark_codecs import bench, metrics
from landmark_codecs.__main__ import main
from landmark_codecs.bench import _predictions as predictions


def _faces(n=12, size=256):
    """n 300W faces well inside a size x size image, at sub-pixel positions."""
    rng = np.random.default_rng(3)
    shape = bench.mean_shape("300w68") * 0.7 * size + 0.15 * size
    return shape + rng.uniform(-0.05, 0.05, size=(n, 1, 2)) * size + rng.normal(0, 0.01 * size, size=(n, 68, 2))


def _save(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_exact_targets_decode_exactly_with_their_own_decoder(tmp_path):
    """A Gaussian target decodes exactly with DARK; an expected H3R target with H3R top-k, as
    probabilities and as its log (logits); NME, FR and AUC are landmark_codecs.metrics'."""
    truth = _faces()
    hm = lc.image_to_heatmap(truth, image_size=(256, 256), heatmap_size=(64, 64))
    gauss, _ = lc.encode_gaussian(hm, heatmap_size=(64, 64), sigma=2.0)
    rows, _, _, _ = predictions.decode_predictions(
        _save(tmp_path / "g.npz", heatmaps=gauss, landmarks=truth, image_size=np.array([256, 256]), sigma=2.0)
    )
    by = {r.decoder: r for r in rows}
    assert (
        by["dark"].mean_error_image_px < 1e-9 and by["dark"].nme_percent < 1e-9 and by["dark"].auc == pytest.approx(1.0)
    )
    assert by["argmax"].mean_error_image_px > 0.5  # quantization: up to half a heatmap pixel (2 image px)
    xy = lc.heatmap_to_image(lc.decode_argmax(gauss)[0], image_size=(256, 256), heatmap_size=(64, 64))
    per_face = metrics.nme(xy, truth)
    assert by["argmax"].nme_percent == pytest.approx(100 * per_face.mean(), rel=1e-12)
    assert by["argmax"].auc == pytest.approx(float(metrics.auc(per_face)), rel=1e-12)
    expected, _ = lc.encode_randomized_rounding(hm, heatmap_size=(64, 64), expected=True)
    for maps, logits in ((expected, False), (np.log(np.maximum(expected, 1e-300)), True)):
        rows, loaded, _, _ = predictions.decode_predictions(
            _save(tmp_path / "h.npz", heatmaps=maps, landmarks=truth, image_size=np.array([256, 256]), logits=logits)
        )
        by = {r.decoder: r for r in rows}
        assert loaded.logits is logits and by["h3r"].mean_error_image_px < 1e-9
        assert by["dark"].mean_error_image_px is None and "sigma" in by["dark"].note


def test_visibility_conventions_and_eye_overrides(tmp_path):
    truth = _faces(n=4, size=64)
    hm = lc.image_to_heatmap(truth, image_size=(64, 64), heatmap_size=(16, 16), convention="udp")
    maps, _ = lc.encode_gaussian(hm, heatmap_size=(16, 16), sigma=1.5)
    visible = np.ones((4, 68), dtype=bool)
    visible[:, :10] = False
    maps[:, :10] = np.random.default_rng(0).random(maps[:, :10].shape)  # garbage where invisible
    path = _save(
        tmp_path / "u.npz",
        heatmaps=maps,
        landmarks=truth,
        image_size=np.array([64, 64]),
        weights=visible,
        convention="udp",
    )
    rows = predictions.decode_predictions(path, sigma=1.5, eyes=(39, 42)).rows
    dark = next(r for r in rows if r.decoder == "dark")
    assert dark.mean_error_image_px < 1e-9 and dark.nme_percent < 1e-9


@pytest.mark.parametrize(
    "arrays, message",
    [
        (dict(landmarks=np.zeros((2, 3, 2)), image_size=np.array([8, 8])), "lacks heatmaps"),
        (
            dict(heatmaps=np.zeros((2, 3, 4)), landmarks=np.zeros((2, 3, 2)), image_size=np.array([8, 8])),
            r"heatmaps must be a float \(N, K, H, W\)",
        ),
        (
            dict(heatmaps=np.zeros((2, 3, 4, 4)), landmarks=np.zeros((2, 4, 2)), image_size=np.array([8, 8])),
            r"landmarks must be a real \(N, K, 2\) = \(2, 3, 2\)",
        ),
        (
            dict(heatmaps=np.zeros((2, 3, 4, 4)), landmarks=np.zeros((2, 3, 2)), image_size=np.array([8.0, 8.0])),
            "image_size must be two ints",
        ),
        (
            dict(
                heatmaps=np.zeros((2, 3, 4, 4)),
                landmarks=np.zeros((2, 3, 2)),
                image_size=np.array([8, 8]),
                weights=np.ones(3),
            ),
            r"weights must be a boolean or numeric \(N, K\) = \(2, 3\) array",
        ),
        (
            dict(
                heatmaps=np.zeros((2, 3, 4, 4)),
                landmarks=np.zeros((2, 3, 2)),
                image_size=np.array([8, 8]),
                convention="corner",
            ),
            "convention must be one of",
        ),
    ],
)
def test_bad_files_name_the_file_and_the_key(tmp_path, arrays, message):
    path = _save(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=message):
        predictions.decode_predictions(path)
    with pytest.raises(ValueError, match=r"bad.npz"):
        predictions.decode_predictions(path)


def test_cli_prints_the_table_writes_json_and_refuses_mixed_modes(tmp_path, capsys):
    truth = _faces(n=3)
    maps, _ = lc.encode_gaussian(
        lc.image_to_heatmap(truth, image_size=(256, 256), heatmap_size=(32, 32)), heatmap_size=(32, 32), sigma=1.0
    )
    path = _save(tmp_path / "p.npz", heatmaps=maps, landmarks=truth, image_size=np.array([256, 256]))
    assert main(["bench", "--predictions", str(path), "--sigma", "1", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert (
        "Decoders on saved network outputs: 3 faces x 68 landmarks, 32x32 heatmaps from p.npz" in out
        and "AUC@0.1" in out
    )
    saved = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert [r["decoder"] for r in saved["rows"]] == list(predictions.DECODERS) and saved["config"]["sigma"] == 1.0
    assert saved["rows"][2]["mean_error_image_px"] < 1e-9  # dark on its own target
    for args, message in (
        (["--predictions", str(path), "--speed"], "does not combine"),
        (["--predictions", str(tmp_path / "none.npz")], "does not exist"),
        (["--sigma", "2"], "--sigma is for --predictions"),
        (["--predictions", str(path), "--sigma", "0"], "expected a positive number"),
    ):
        assert _exit_code(["bench", *args]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


@pytest.mark.parametrize("unlabelled", ["nan", "weights"])
def test_a_file_with_no_labelled_landmark_is_refused_not_scored_as_failures(tmp_path, capsys, unlabelled):
    """Was exit 0 with FR 1.0 and AUC 0.0 for every decoder, as if each had failed."""
    truth = _faces(n=2)
    maps, _ = lc.encode_gaussian(
        lc.image_to_heatmap(truth, image_size=(256, 256), heatmap_size=(32, 32)), heatmap_size=(32, 32), sigma=1.0
    )
    extra = {"weights": np.zeros(truth.shape[:-1])} if unlabelled == "weights" else {}
    landmarks = np.full_like(truth, np.nan) if unlabelled == "nan" else truth
    path = _save(tmp_path / "p.npz", heatmaps=maps, landmarks=landmarks, image_size=np.array([256, 256]), **extra)
    assert _exit_code(["bench", "--predictions", str(path)]) == 2
    err = capsys.readouterr().err
    assert "no labelled landmark" in err and "p.npz" in err and err.count("\n") == 1, err


def _exit_code(argv: list[str]) -> int:
    """main's return value, or the code argparse exits with."""
    try:
        return main(argv)
    except SystemExit as stop:
        return int(stop.code)


def test_the_ced_plot_draws_each_decoders_curve_from_the_metrics(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (the plot extra)")
    truth = _faces(n=6)
    maps, _ = lc.encode_gaussian(
        lc.image_to_heatmap(truth, image_size=(256, 256), heatmap_size=(16, 16)), heatmap_size=(16, 16), sigma=1.0
    )
    path = _save(tmp_path / "p.npz", heatmaps=maps, landmarks=truth, image_size=np.array([256, 256]), sigma=1.0)
    decoded = predictions.decode_predictions(path)
    assert set(decoded.per_face_nme) == set(predictions.DECODERS)
    fig = predictions.ced_plot(decoded.per_face_nme, tmp_path / "ced.png", title="t")
    assert (tmp_path / "ced.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = fig.axes[0].get_lines()
    assert [line.get_label().split(" (")[0] for line in lines] == list(decoded.per_face_nme)
    levels = lines[0].get_xdata() / 100
    np.testing.assert_allclose(
        lines[0].get_ydata(), metrics.ced(decoded.per_face_nme["argmax"], levels), rtol=0, atol=1e-15
    )
    assert len({(line.get_linestyle(), line.get_marker()) for line in lines}) == len(
        lines
    )  # coinciding curves stay visible
    predictions.ced_plot(decoded.per_face_nme, tmp_path / "ced.svg", title="t")
    assert (tmp_path / "ced.svg").read_text().lstrip().startswith("<?xml")
    assert main(["bench", "--predictions", str(path), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "ced.png").is_file() and "ced.png" in capsys.readouterr().out


def test_without_matplotlib_the_cli_says_so_and_writes_the_json(tmp_path, capsys, monkeypatch):
    def missing(*args, **kwargs):
        raise ImportError("No module named 'matplotlib'")

    monkeypatch.setattr(predictions, "ced_plot", missing)
    truth = _faces(n=2)
    maps, _ = lc.encode_gaussian(
        lc.image_to_heatmap(truth, image_size=(256, 256), heatmap_size=(16, 16)), heatmap_size=(16, 16), sigma=1.0
    )
    path = _save(tmp_path / "p.npz", heatmaps=maps, landmarks=truth, image_size=np.array([256, 256]))
    assert main(["bench", "--predictions", str(path), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "no CED plot: matplotlib is not installed" in out and (tmp_path / "out" / "predictions.json").is_file()


# --- hostile files (issue 26): a clear error naming the file and member, never a traceback ---


def _good(n=3, size=32):
    truth = _faces(n=n, size=size * 4)
    maps, _ = lc.encode_gaussian(
        lc.image_to_heatmap(truth, image_size=(4 * size, 4 * size), heatmap_size=(size, size)),
        heatmap_size=(size, size),
        sigma=1.0,
    )
    return dict(heatmaps=maps, landmarks=truth, image_size=np.array([4 * size, 4 * size]))


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            dict(logits="False"),
            r"logits must be a boolean \(True or False, or 0 or 1\), got <U5 'False'",
        ),  # was: read as True
        (dict(logits=np.nan), r"logits must be a boolean .* got float64 nan"),
        (dict(logits=np.array([True, False])), "logits must be a boolean"),
        (dict(weights=np.array([["a"] * 68] * 3)), r"weights must be a boolean or numeric \(N, K\)"),  # was: accepted
        (dict(weights=np.full((3, 68), np.nan)), "weights must be finite"),
        (dict(sigma=np.array([2.0, 3.0])), "sigma must be one number"),  # was: a TypeError traceback
        (dict(sigma=-1.0), "sigma must be positive"),
        (dict(convention=np.array(["udp", "legacy"])), "convention must be one of"),
        (
            dict(landmarks=np.zeros((3, 68, 2), dtype=complex)),
            r"landmarks must be a real \(N, K, 2\)",
        ),  # was: cast to real
        (dict(image_size=np.array([128.0, 128.0])), "image_size must be two ints"),
        (dict(heatmaps=np.zeros((3, 68, 32, 32), dtype=complex)), r"heatmaps must be a float \(N, K, H, W\)"),
    ],
)
def test_hostile_members_are_refused_by_name(tmp_path, extra, message):
    path = _save(tmp_path / "hostile.npz", **{**_good(), **extra})
    with pytest.raises(ValueError, match=message):
        predictions.decode_predictions(path)
    with pytest.raises(ValueError, match=r"hostile.npz"):
        predictions.decode_predictions(path)


def test_files_that_are_not_npz_archives_of_arrays_are_refused(tmp_path):
    import zipfile

    npy = tmp_path / "one.npy"
    np.save(npy, np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"holds one array \(a .npy file\), not an .npz archive"):
        predictions.load_predictions(npy)
    raw = tmp_path / "raw.npz"
    with zipfile.ZipFile(raw, "w") as z:  # a zip whose members are not .npy arrays
        z.writestr("heatmaps", b"not an array")
        z.writestr("landmarks", b"")
        z.writestr("image_size", b"")
    with pytest.raises(ValueError, match=r"member 'heatmaps' is not a .npy array \(a raw zip member\)"):
        predictions.load_predictions(raw)
    text = tmp_path / "text.npz"
    text.write_text("heatmaps, landmarks")
    with pytest.raises(ValueError, match=r"is not a readable .npz archive"):
        predictions.load_predictions(text)
    pickled = tmp_path / "objects.npz"
    np.savez(pickled, **{**_good(), "sigma": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(ValueError, match=r"member 'sigma' holds Python objects"):
        predictions.load_predictions(pickled)


def test_a_header_that_lies_about_its_size_is_refused_before_any_allocation(tmp_path):
    import io
    import zipfile

    good = tmp_path / "good.npz"
    np.savez(good, **_good())
    lying = tmp_path / "lying.npz"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(lying, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "heatmaps.npy":  # claim 2 PiB of float64 in the header
                buffer = io.BytesIO()
                np.lib.format.write_array_header_2_0(
                    buffer, {"descr": "<f8", "fortran_order": False, "shape": (2**18, 2**18, 2**6, 2**2)}
                )
                data = np.lib.format.magic(2, 0) + buffer.getvalue()[8:] + data[128:]
            dst.writestr(name, data)
    with pytest.raises(
        ValueError, match=r"member 'heatmaps' claims shape \(262144, 262144, 64, 4\) of float64 .* the file is damaged"
    ):
        predictions.load_predictions(lying)


def test_a_nan_prediction_or_ground_truth_is_counted_and_said(tmp_path):
    arrays = _good()
    arrays["heatmaps"][0, 5, 3, 3] = np.nan  # one map pixel: that landmark's prediction is NaN
    arrays["landmarks"][1, 7] = np.nan  # one unlabelled ground-truth point: left out
    rows = {r.decoder: r for r in predictions.decode_predictions(_save(tmp_path / "nan.npz", **arrays), sigma=1.0).rows}
    for name in ("dark", "soft_argmax", "h3r"):  # argmax reports the NaN pixel's position, as documented
        row = rows[name]
        assert row.mean_error_image_px is not None and np.isfinite(row.mean_error_image_px), name  # was: "-"
        assert "1 of 203 predictions are not finite" in row.note, (name, row.note)
    assert rows["dark"].mean_error_image_px < 1e-9  # the rest decode exactly
    text = predictions.format_predictions(list(rows.values()), description="d")
    assert "1 of 203 predictions are not finite" in text


# ---------------------------------------------------------------- the three mistakes, caught


def _gaussian_file(tmp_path, name="g.npz", truth=None, scale=1.0, **extra):
    """Exact sigma-2 Gaussian targets of 300W faces (256 px images, 64x64 maps); the saved
    landmarks are ``truth * scale`` (a unit mistake when scale is not 1)."""
    truth = _faces() if truth is None else truth
    hm = lc.image_to_heatmap(truth, image_size=(256, 256), heatmap_size=(64, 64))
    maps, _ = lc.encode_gaussian(hm, heatmap_size=(64, 64), sigma=2.0)
    return _save(
        tmp_path / name, heatmaps=maps, landmarks=truth * scale, image_size=np.array([256, 256]), **extra
    ), maps


@pytest.mark.parametrize(
    "scale, message",
    [
        (64 / 256, r"the landmarks look like heatmap pixels: .* save them in pixels of the 256x256 input \(x 4 here\)"),
        (
            1 / 256,
            r"every labelled landmark lies in \[0, 1\] .* they look normalized by the image size; save them in image pixels \(multiplied by image_size = \(256, 256\)\)",
        ),
        (3.0, r"of 816 labelled landmarks lie outside the 256x256 image .* not in pixels of the original photo"),
    ],
)
def test_landmarks_in_another_unit_are_refused_with_the_fix(tmp_path, scale, message):
    """Heatmap pixels, [0, 1] and the uncropped photo's pixels: an error naming the unit to use,
    never a table of 500 % NMEs; the right unit passes."""
    path, _ = _gaussian_file(tmp_path, scale=scale, sigma=2.0)
    with pytest.raises(ValueError, match=message):
        predictions.decode_predictions(path)
    good, _ = _gaussian_file(tmp_path, name="good.npz", sigma=2.0)
    assert {r.decoder: r for r in predictions.decode_predictions(good).rows}["dark"].nme_percent < 1e-9


def test_logits_read_as_probabilities_and_the_reverse_get_a_note_naming_the_flag(tmp_path):
    """Log-probabilities saved without logits=True: the softmax rows say to pass --logits, and
    with --logits (the argument) the note is gone and soft-argmax is within 0.05 px; probabilities
    saved with logits=True: the rows say to drop it."""
    _, maps = _gaussian_file(tmp_path)
    t = _faces()
    logp = np.log(np.maximum(maps / maps.sum(axis=(-2, -1), keepdims=True), 1e-30))
    as_probs = _save(tmp_path / "l.npz", heatmaps=logp, landmarks=t, image_size=np.array([256, 256]))
    rows = {r.decoder: r for r in predictions.decode_predictions(as_probs).rows}
    for name in ("soft_argmax", "h3r", "h3r:activation=window"):
        assert "pass --logits" in rows[name].note, name
    assert rows["argmax"].note == ""
    fixed = {r.decoder: r for r in predictions.decode_predictions(as_probs, logits=True).rows}
    assert fixed["soft_argmax"].note == "" and fixed["soft_argmax"].mean_error_image_px < 0.05
    reverse = _save(tmp_path / "p.npz", heatmaps=maps, landmarks=t, image_size=np.array([256, 256]), logits=True)
    rows = {r.decoder: r for r in predictions.decode_predictions(reverse).rows}
    assert "drop --logits" in rows["soft_argmax"].note and "drop --logits" in rows["h3r"].note


def test_sigmoid_maps_say_why_soft_argmax_is_pulled_to_the_centre(tmp_path):
    """A sigmoid head's maps: a Gaussian over a 0.02 background. The soft-argmax row says how much
    mass lies far from the peak (measured here: most of it) and that it wants logits; the
    plain Gaussian target gets no such note."""
    truth = _faces()
    hm = lc.image_to_heatmap(truth, image_size=(256, 256), heatmap_size=(64, 64))
    maps, _ = lc.encode_gaussian(hm, heatmap_size=(64, 64), sigma=2.0)
    path = _save(tmp_path / "s.npz", heatmaps=maps + 0.02, landmarks=truth, image_size=np.array([256, 256]))
    rows = {r.decoder: r for r in predictions.decode_predictions(path).rows}
    note = rows["soft_argmax"].note
    share = float(note.split(" %")[0])
    assert share > 50 and "suits the logits of a softmax-trained network (--logits)" in note
    assert rows["soft_argmax"].mean_error_image_px > 10  # what the note explains
    clean, _ = _gaussian_file(tmp_path, name="c.npz", sigma=2.0)
    assert {r.decoder: r for r in predictions.decode_predictions(clean).rows}["soft_argmax"].note == ""


def test_a_layout_without_default_eye_corners_says_how_to_give_them(tmp_path, capsys):
    rng = np.random.default_rng(0)
    truth = rng.uniform(20, 230, (6, 10, 2))
    hm = lc.image_to_heatmap(truth, image_size=(256, 256), heatmap_size=(64, 64))
    maps, _ = lc.encode_gaussian(hm, heatmap_size=(64, 64), sigma=2.0)
    path = _save(tmp_path / "k10.npz", heatmaps=maps, landmarks=truth, image_size=np.array([256, 256]))
    decoded = predictions.decode_predictions(path)
    assert decoded.notes == (
        "NME, FR and AUC need the two outer eye corners: K = 10 has no default (68, 98 and 29 points have): "
        "pass --landmarks I,J",
    )
    assert main(["bench", "--predictions", str(path)]) == 0
    assert "- NME, FR and AUC need the two outer eye corners" in capsys.readouterr().out
    assert predictions.decode_predictions(path, eyes=(0, 1)).notes == ()
    with pytest.raises(SystemExit) as stop:
        main(["bench", "--logits"])
    assert stop.value.code == 2 and "--logits is for --predictions" in capsys.readouterr().err


@pytest.mark.parametrize("eyes", [True, False])
def test_cli_ends_with_a_verdict_in_100_columns_and_footnotes_every_dash(tmp_path, capsys, eyes):
    """The verdict names the best decoder (and the tied ones, by the paired test over per-face
    NMEs, which --out stores beside the rows); a row's note is printed once, by its number;
    without eye corners the NME column is '-' and a footnote says what to pass."""
    truth = _faces(n=16)
    if not eyes:
        truth = truth[:, :20]  # 20 landmarks: no default eye corners
    rng = np.random.default_rng(0)
    maps, _ = lc.encode_gaussian(
        lc.image_to_heatmap(truth + rng.normal(0, 2, truth.shape), image_size=(256, 256), heatmap_size=(32, 32)),
        heatmap_size=(32, 32),
        sigma=1.0,
    )
    path = _save(tmp_path / "p.npz", heatmaps=maps, landmarks=truth, image_size=np.array([256, 256]))
    assert main(["bench", "--predictions", str(path), "--sigma", "1", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100
    verdict = next(line for line in lines if line.startswith("verdict: best "))
    best = verdict.split()[2]
    row = next(line for line in lines if line.startswith(best + " "))
    assert "*" in row
    if eyes:
        saved = json.loads((tmp_path / "out" / "predictions.json").read_text())
        assert set(saved["per_face_nme"]) <= {r["decoder"] for r in saved["rows"]} and saved["per_face_nme"]
        assert "=: the 95 % confidence interval" in out
    else:
        assert any(line.split()[2] == "-" for line in lines if line.startswith(best + " "))
        assert "pass --landmarks I,J" in out
    for note_number in {m for line in lines for m in re.findall(r"  \[(\d+)\]$", line)}:
        assert sum(line.startswith(f"- [{note_number}] ") for line in lines) == 1
