"""Smoke test of examples/train_synthetic.py: every codec trains (its loss falls on a fixed
batch), decodes finite coordinates of the right shape, and the script writes its report."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # trains small networks

torch = pytest.importorskip("torch")

PATH = pathlib.Path(__file__).resolve().parents[1] / "examples" / "train_synthetic.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("train_synthetic", PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.mark.parametrize("codec", ["argmax", "dark", "awing_dark", "awing_boundary", "h3r", "soft_argmax", "pipnet"])
def test_each_codec_trains_and_decodes(example, codec):
    net, c, losses = example.train(codec, 8, steps=30, batch=8, lr=5e-3, fixed_batch=True)
    assert len(losses) == 30 and np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5]), (
        f"{codec}: loss did not fall: {losses[:5]} -> {losses[-5:]}"
    )
    gen = torch.Generator().manual_seed(99)
    faces = example.random_faces(6, gen, torch.device("cpu"))
    images = example.render(faces, gen)
    with torch.no_grad():
        decoded = c.decode(net.eval()(images))
    assert decoded.shape == (6, example.K, 2) and bool(torch.isfinite(decoded).all())
    trained, quantized = example.evaluate(net, c, faces, images)
    assert np.isfinite(trained) and np.isfinite(
        quantized
    )  # their values: test_quantization_only_error_is_the_codecs_own


def test_quantization_only_error_is_the_codecs_own(example):
    """The exact codecs lose nothing by themselves; vanilla argmax loses up to half a heatmap pixel."""
    faces = example.random_faces(64, torch.Generator().manual_seed(3), torch.device("cpu"))
    for name in ("dark", "h3r", "soft_argmax", "pipnet"):
        c = example.Recipe(name, 8, lc_table(example) if name == "pipnet" else None)
        got = c.quantization_only(faces)
        assert float((got - faces).abs().max()) < 1e-3 * 8, name
    c = example.Recipe("argmax", 8)
    err = (c.quantization_only(faces) - faces).abs()
    assert float(err.max()) <= 0.5 * 8 + 1e-4 and float(err.max()) > 0.25 * 8


def lc_table(example):
    import landmark_codecs as lc

    return lc.pipnet_neighbors(torch.asarray(example.mean_shape()), num_neighbors=4)


def test_script_writes_table_json_and_plot(example, tmp_path, capsys):
    assert (
        example.main(
            [
                "--codecs",
                "h3r",
                "dark",
                "--sizes",
                "4",
                "8",
                "--steps",
                "3",
                "--batch",
                "4",
                "--test",
                "8",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "| h3r |" in out and "| dark |" in out and "8x8 quantization only" in out
    data = json.loads((tmp_path / "results.json").read_text())
    assert {(r["codec"], r["size"]) for r in data["results"]} == {("h3r", 4), ("h3r", 8), ("dark", 4), ("dark", 8)}
    assert (tmp_path / "nme.png").read_bytes().startswith(b"\x89PNG")


def test_script_rejects_a_bad_size(example):
    with pytest.raises(SystemExit):
        example.main(["--sizes", "12"])


def test_every_codec_is_tested_and_the_default_run_leaves_out_only_awing_boundary(example):
    assert set(example.CODECS) - set(example.DEFAULT_CODECS) == {"awing_boundary"}
    # every recipe takes its target and decoder from the library's one registry
    assert set(example.RECIPES) == set(example.CODECS)
    assert all(
        example.Recipe(n, 8, lc_table(example) if n == "pipnet" else None).codec.name in example.lc.codec_names()
        for n in example.CODECS
    )


def test_awing_boundary_trains_the_boundary_channel_through_coordconv(example):
    net, c, _ = example.train("awing_boundary", 8, steps=2, batch=4)
    assert c.outputs == example.K + 1
    assert any(isinstance(m, example.CoordConv2d) for m in net.modules())
    # the boundary target is the merged polyline map of the face's chains
    faces = example.random_faces(2, torch.Generator().manual_seed(5), torch.device("cpu"))
    boundary = example.lc.encode_boundaries(
        example.to_heatmap(faces, 8), heatmap_size=(8, 8), boundaries=example.CHAINS
    )
    assert boundary.heatmaps.shape == (2, 1, 8, 8) and float(boundary.heatmaps.max()) > 0.9


def test_save_predictions_writes_files_the_bench_decodes(example, tmp_path, capsys):
    argv = [
        "--codecs",
        "h3r",
        "dark",
        "pipnet",
        "--sizes",
        "4",
        "--steps",
        "2",
        "--batch",
        "4",
        "--test",
        "6",
        "--save-predictions",
        str(tmp_path),
    ]
    assert example.main(argv) == 0
    assert "pipnet: outputs are not heatmaps, not saved" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dark_4.npz", "h3r_4.npz"]
    from landmark_codecs.bench import _predictions

    for name, logits in (("h3r_4.npz", True), ("dark_4.npz", False)):
        rows, loaded, _, _ = _predictions.decode_predictions(tmp_path / name, eyes=example.EYE_CORNERS)
        assert (
            loaded.logits is logits and loaded.heatmaps.shape == (6, example.K, 4, 4) and loaded.sigma == example.SIGMA
        )
        assert loaded.image_size == (example.INPUT, example.INPUT)
        assert all(r.nme_percent is not None and np.isfinite(r.nme_percent) for r in rows)
