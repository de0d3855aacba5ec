"""The README's example runs and does what it says."""

from __future__ import annotations

import ast
import dataclasses
import html
import importlib
import importlib.util
import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _run_first_example(page: pathlib.Path, index: int = 0) -> dict:
    """Execute the page's first (or ``index``-th) ```python block; return its variables."""
    code = re.findall(r"```python\n(.*?)```", page.read_text(), re.S)[index]
    scope: dict = {}
    exec(compile(code, str(page), "exec"), scope)
    return scope


def test_readme_example_runs_and_round_trips():
    pytest.importorskip("torch")
    scope = _run_first_example(README)
    assert scope["target"].shape == (98, 64, 64) and scope["weight"].shape == (98,)
    # The expected H3R target decodes back to the landmarks (inside the representable range).
    coords = scope["codec"].to_heatmap(scope["landmarks_xy"])
    inner = np.all((coords >= 0) & (coords <= 63), axis=-1)
    np.testing.assert_allclose(scope["xy_image"][0].numpy()[inner], scope["landmarks_xy"][inner], atol=1e-9)
    assert (~inner).any() and scope["error"].max() <= 0.5 * 4  # the border band: half a heatmap pixel


def test_readme_example_prints_what_the_readme_says(capsys):
    pytest.importorskip("torch")
    _run_first_example(README)
    assert f"prints `{capsys.readouterr().out.strip()}`" in README.read_text()


def test_readme_commands_are_the_ci_commands():
    """.ci/run's first leg runs the README's set-up lines as .ci/readme_setup.py reads them (the
    main job, then the tests); its full leg ends with the README's test command, in the readme
    leg's venv (less what already passed there, when it ran)."""
    lines = subprocess.run(
        [sys.executable, str(README.parent / ".ci" / "readme_setup.py"), str(README)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert len(lines) == 2 and lines[0].endswith("landmark-codecs bench") and lines[1] == "python -m pytest"
    ci = (README.parent / ".ci" / "run").read_text()
    assert "python .ci/readme_setup.py README.md" in ci
    assert re.search(rf'^\s*in_venv readme "\$skip {re.escape(lines[1])}"\s*$', ci.split("full)", 1)[1], re.M)


def test_ci_numpy_leg_pins_the_declared_numpy_floor():
    """The oldest NumPy pyproject.toml admits is the one CI's NumPy-only leg runs (issue 46)."""
    floor = re.search(r'"numpy>=([\d.]+)"', (README.parent / "pyproject.toml").read_text()).group(1)
    pins = re.findall(r'"numpy==([\d.]+)"', (README.parent / ".ci" / "run").read_text())
    assert pins and all(p.startswith(floor + ".") or p == floor for p in pins), (floor, pins)


def test_losses_page_example_runs():
    """docs/losses.md: the Module equals the function it wraps on the example batch."""
    pytest.importorskip("torch")
    scope = _run_first_example(README.parent / "docs" / "losses.md")
    assert scope["pred"].grad is not None and scope["pred"].grad.shape == (8, 98, 64, 64)
    assert bool(scope["pred"].grad.isfinite().all()) and float(scope["loss"].detach()) > 0


def test_losses_page_boundary_example_trains_the_extra_channel():
    """docs/losses.md's second example: the boundary channel is in the loss and gets a gradient."""
    pytest.importorskip("torch")
    scope = _run_first_example(README.parent / "docs" / "losses.md", index=1)
    assert scope["target"].shape == (8, 69, 64, 64) and scope["weights"].shape == (8, 69)
    assert bool((scope["pred"].grad[:, -1] != 0).any()) and float(scope["boundary"].heatmaps.max()) == 1.0


def test_boundaries_page_example_runs():
    """docs/boundaries.md: the occluded chin zeroes face 0's boundary weight only; CoordConv runs."""
    pytest.importorskip("torch")
    scope = _run_first_example(README.parent / "docs" / "boundaries.md")
    assert scope["boundary"].weights[:, 0].tolist() == [0.0, 1.0, 1.0, 1.0]
    assert scope["mask"][0, -1] == 0 and scope["out"].shape == (4, 64, 64, 64)
    assert bool(scope["pred"].grad.isfinite().all())


def test_star_page_example_runs():
    """docs/star.md: STAR trains the logits through the sigmoid; the moments decompose."""
    pytest.importorskip("torch")
    scope = _run_first_example(README.parent / "docs" / "star.md")
    assert bool(scope["logits"].grad.isfinite().all()) and float(scope["loss"]) > 0
    assert scope["spread"].shape == (8, 98, 2) and bool((scope["spread"][..., 0] <= scope["spread"][..., 1]).all())


def test_metrics_page_example_runs(capsys):
    """docs/metrics.md: the CED at the threshold is 1 - FR, and the printed line is the metrics."""
    scope = _run_first_example(README.parent / "docs" / "metrics.md")
    m = scope["metrics"]
    assert scope["nme"].shape == (500,) and scope["pck"].shape == (500,)
    assert scope["curve"][-1] == pytest.approx(1.0 - float(m.failure_rate(scope["nme"])), abs=1e-15)
    assert f"AUC@0.1 {float(m.auc(scope['nme'])):.4f}" in capsys.readouterr().out


def test_pipnet_page_example_runs():
    """docs/pipnet.md: the example trains (finite gradients) and decodes near the landmarks."""
    torch = pytest.importorskip("torch")
    scope = _run_first_example(README.parent / "docs" / "pipnet.md")
    assert scope["decoded_xy"].shape == (4, 19, 2) and scope["confidence"].shape == (4, 19)
    assert all(
        bool(torch.isfinite(p.grad).all()) for p in (scope["scores"], scope["offsets"], scope["neighbor_offsets"])
    )
    # Offsets perturbed by ~0.02 cells (0.64 px at stride 32): decoded within a couple of pixels.
    assert float((scope["decoded_xy"] - scope["landmarks_xy"]).abs().max()) < 3.0


def test_dark_page_example_round_trips():
    """docs/dark_udp_simcc.md: UDP and SimCC decode the example landmarks back."""
    scope = _run_first_example(README.parent / "docs" / "dark_udp_simcc.md")
    np.testing.assert_allclose(scope["udp_xy"], scope["landmarks_xy"], atol=1e-8)
    np.testing.assert_allclose(scope["simcc_xy"], scope["landmarks_xy"], atol=1e-8)


def test_deeplabcut_page_example_prints_what_the_page_says(capsys):
    page = README.parent / "docs" / "deeplabcut.md"
    scope = _run_first_example(page)
    assert f"prints `{capsys.readouterr().out.strip()}`" in page.read_text()
    assert scope["heatmaps"].shape == (1, 2, 24, 32) and scope["locref"].shape == (1, 2, 2, 24, 32)


def test_home_page_example_prints_what_the_page_says(capsys):
    page = README.parent / "docs" / "index.md"
    scope = _run_first_example(page)
    assert f"prints `{capsys.readouterr().out.strip()}`" in page.read_text()
    assert scope["coords"].shape == (1, 3, 2) and scope["heatmaps"].shape == (1, 3, 64, 64)


def test_recipe_training_loop_trains_and_scores():
    """docs/recipes/training_loop.md: the loop learns (the loss falls, the test NME is below the
    failure threshold face papers use, 10 %), and the decoded batch is in crop pixels."""
    pytest.importorskip("torch")
    scope = _run_first_example(README.parent / "docs" / "recipes" / "training_loop.md")
    losses, nme = scope["losses"], scope["nme"]
    assert len(losses) == 25 * 4 and losses[-1] < losses[0] / 2
    assert nme.shape == (32,) and float(nme.mean()) < 0.1
    assert scope["coords"].shape == (32, 68, 2) and float(scope["coords"].min()) > -0.5


def test_recipe_property_test_catches_the_biased_decoder(capsys):
    """docs/recipes/test_your_codec.md: the exact decoder passes, the biased one is caught (the
    page itself asserts that with pytest.raises), and its shown failure is that decoder's."""
    pytest.importorskip("hypothesis")
    page = README.parent / "docs" / "recipes" / "test_your_codec.md"
    scope = _run_first_example(page)
    assert capsys.readouterr().out.strip().endswith("the exact decoder passes; the biased one is caught")
    shown = re.search(r"landmark \(\d+, \d+\): coords \[(.*?)\] -> \[(.*?)\]", page.read_text())
    coords = np.array([[float(v) for v in shown.group(1).split(", ")]])
    got = scope["my_decode_biased"](scope["my_encode"](coords))
    np.testing.assert_allclose(got[0], [float(v) for v in shown.group(2).split(", ")], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(scope["my_decode"](scope["my_encode"](coords)), coords, rtol=0, atol=1e-9)


def test_recipe_choose_a_codec_prints_what_the_page_says(tmp_path, monkeypatch):
    """docs/recipes/choose_a_codec.md: each `landmark-codecs bench` command, run where the page's
    Python block saved predictions.npz, prints the text block after it (numbers to their last
    printed digit), verdicts included."""
    page = (README.parent / "docs" / "recipes" / "choose_a_codec.md").read_text()
    monkeypatch.chdir(tmp_path)
    _run_first_example(README.parent / "docs" / "recipes" / "choose_a_codec.md")
    runs = re.findall(r"```bash\n(landmark-codecs bench [^\n]*)\n```\s*```text\n(.*?)```", page, re.S)
    assert len(runs) == 2 and any("--predictions predictions.npz" in command for command, _ in runs)
    for command, shown in runs:
        done = subprocess.run(
            [sys.executable, "-m", "landmark_codecs", *command.split()[1:], "--no-progress"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "best" in shown
        _assert_text_close(done.stdout.strip(), shown.strip())


def test_codecs_page_example_prints_what_the_page_says(capsys):
    page = README.parent / "docs" / "codecs.md"
    scope = _run_first_example(page)
    printed = capsys.readouterr().out.strip()
    assert f"prints `{printed}`" in page.read_text()
    assert scope["error"] < 1e-9 and scope["encoded"].weights[:, 0].max() == 0


def test_torch_page_example_runs():
    """docs/torch.md: the collate -> loss -> decode loop runs, with gradients and image pixels out."""
    torch = pytest.importorskip("torch")
    scope = _run_first_example(README.parent / "docs" / "torch.md")
    assert scope["targets"].shape == (8, 98, 32, 32) and scope["weights"].shape == (8, 98)
    assert scope["keypoints"].shape == (8, 98, 2) and scope["coords"].requires_grad
    assert scope["net"].weight.grad is not None and bool(torch.isfinite(scope["net"].weight.grad).all())
    # Each sampled H3R target is a Gaussian (sigma=1) of peak 1 at the rounded pixel.
    assert bool((scope["targets"].amax(dim=(-2, -1)) == 1).all())


@pytest.mark.parametrize("run", ["default", "steps1500", "boundary", "boundary_seed1"])
def test_training_page_tables_are_the_recorded_results(run):
    """docs/training.md's tables are the results.json the command wrote, to the printed digits."""

    docs = README.parent / "docs"
    data = json.loads((docs / "training" / run / "results.json").read_text())
    page = (docs / "training.md").read_text()
    section = page.split(f"training/{run}/results.json", 1)[1]
    for r in data["results"]:
        row = re.search(rf"^\| {r['codec']} \|(.*)$", section, re.M).group(1).split("|")
        col = sorted({x["size"] for x in data["results"]}).index(r["size"])
        assert float(row[2 * col]) == round(r["nme"], 2) and float(row[2 * col + 1]) == round(
            r["quantization_nme"], 2
        ), (run, r)


def _bench_blocks(page: str) -> list[str]:
    return [b.strip() for b in page.split("```")[1::2]]


# Benchmark rows are float64 statistics of decoded coordinates. The lossless codecs' rows are
# rounding noise (1e-17..1e-14 image px) whose digits depend on the CPU's SIMD and libm kernels,
# so rows computed here are compared with the committed ones to the exactness claim (1e-9 image
# px, absolute) or to 1e-9 relative (a float64 mean over ~10^4 landmarks loses at most ~1e-12).
_ROW_ATOL, _ROW_RTOL = 1e-9, 1e-9
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e-?\d+)?")


def _assert_rows_close(got: list[dict], want: list[dict]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.keys() == w.keys()
        for key, value in w.items():
            if isinstance(value, float):
                assert g[key] == pytest.approx(value, rel=_ROW_RTOL, abs=_ROW_ATOL), (key, g, w)
            else:
                assert g[key] == value, (key, g, w)


def _assert_text_close(got: str, want: str) -> None:
    """Equal text, except that a printed decimal may differ by one unit of its last digit
    (a float rounding that lands on the other side of it); integers must be equal."""
    assert _NUMBER.split(got) == _NUMBER.split(want), "the text around the numbers differs"
    for g, w in zip(_NUMBER.findall(got), _NUMBER.findall(want)):
        mantissa = w.split("e")[0]
        unit = 10.0 ** -len(mantissa.split(".")[1]) if "." in mantissa else 0.0
        assert abs(float(g) - float(w)) <= unit * (1 + 1e-9), (g, w)


def test_text_comparison_tolerates_only_the_last_printed_digit():
    _assert_text_close("x 0.000001 y 12.5", "x 0.000000 y 12.5")
    _assert_text_close("at 12.4 and 70", "at 12.5 and 70")
    for got, want in [
        ("x 0.000003 y", "x 0.000001 y"),
        ("dark 1.0", "argmax 1.0"),
        ("at 71", "at 70"),
        ("at 12.3", "at 12.5"),
    ]:
        with pytest.raises(AssertionError):
            _assert_text_close(got, want)
    with pytest.raises(AssertionError):
        _assert_rows_close([{"e": 1e-8}], [{"e": 0.0}])
    _assert_rows_close([{"e": 6.7e-17, "codec": "dark"}], [{"e": 6.1e-17, "codec": "dark"}])


@pytest.mark.slow
def test_benchmark_page_tables_are_the_commands_output():
    """docs/benchmark.md shows what `landmark-codecs bench` prints today, and its JSON and plots.

    The page and the plots are the committed JSON formatted (text equal, numbers to their printed
    digit); the JSON's 8x8 and 64x64 rows are what the command computes here, to the tolerances
    above."""
    from landmark_codecs import bench

    docs = README.parent / "docs"
    page = _benchmark_pages()
    blocks = _bench_blocks(page)
    stored = json.loads((docs / "benchmark" / "synthetic" / "results.json").read_text())
    stored_rows = [bench.Row(**r) for r in stored["rows"]]
    landmarks = bench.synthetic_landmarks()
    _assert_text_close(blocks[0], bench.format_report(stored_rows, verbose=True, landmarks=landmarks.description))
    # Each size's rows are seeded by the seed and the size alone: two of the six sizes recomputed
    # stand for the rest (the README's set-up line has just run the whole command).
    sizes = (8, 64)
    rows = [r for m in bench.MODELS for r in bench.run(model=m, sizes=sizes)]
    _assert_rows_close([dataclasses.asdict(r) for r in rows], [r for r in stored["rows"] if r["size"] in sizes])
    from landmark_codecs.bench import _plots

    for folder in ("synthetic", "wflw98"):  # each committed plot draws its committed JSON's rows
        committed = json.loads((docs / "benchmark" / folder / "results.json").read_text())["rows"]
        for model in bench.MODELS:
            png = docs / "benchmark" / folder / f"error-{model}.png"
            assert _plots.figure_source(png) == _plots.data_digest([r for r in committed if r["model"] == model]), png
            assert f"benchmark/{folder}/error-{model}.png" in page


@pytest.mark.slow
def test_benchmark_page_wflw_tables_are_the_commands_output():
    """The WFLW table is its JSON printed; the JSON's 8x8 rows are what the command computes today."""
    from landmark_codecs import bench

    docs = README.parent / "docs"
    stored = json.loads((docs / "benchmark" / "wflw98" / "results.json").read_text())
    cfg = stored["config"]
    landmarks = bench.load_keypoints("wflw98", samples=cfg["samples"], seed=cfg["seed"])  # the packaged copy
    rows = [bench.Row(**r) for r in stored["rows"]]
    (block,) = [b for b in _bench_blocks(_benchmark_pages()) if b.startswith("Decode error") and "meanface_wflw98" in b]
    _assert_text_close(block, bench.format_report(rows, verbose=True, landmarks=landmarks.description))
    for model in bench.MODELS:
        again = bench.run(landmarks, sizes=(8,), model=model)
        _assert_rows_close(
            [dataclasses.asdict(r) for r in again],
            [dataclasses.asdict(r) for r in rows if r.model == model and r.size == 8],
        )


@pytest.mark.parametrize("layout", ["coco17", "mpii16"])
def test_benchmark_page_pose_tables_are_the_commands_output(layout):
    """The human pose tables are their JSON printed (AP, PCKh and the verdict); the JSON's 8x8
    rows are what the command computes today."""
    from landmark_codecs import bench

    docs = README.parent / "docs"
    stored = json.loads((docs / "benchmark" / layout / "results.json").read_text())
    cfg = stored["config"]
    landmarks = bench.load_keypoints(layout, samples=cfg["samples"], seed=cfg["seed"])
    rows = [bench.Row(**r) for r in stored["rows"]]
    want = bench.format_report(rows, verbose=True, landmarks=landmarks.description)
    blocks = [b for b in _bench_blocks(_benchmark_pages()) if f"from pose_{layout}.txt" in b]
    assert len(blocks) == 1
    _assert_text_close(blocks[0], want)
    for model in bench.MODELS:
        again = bench.run(landmarks, sizes=(8,), model=model)
        _assert_rows_close(
            [dataclasses.asdict(r) for r in again],
            [dataclasses.asdict(r) for r in rows if r.model == model and r.size == 8],
        )


def _benchmark_pages() -> str:
    """docs/benchmark.md and its two companions (faces, pose), in the order the site shows them."""
    docs = README.parent / "docs"
    return "\n".join((docs / name).read_text() for name in ("benchmark.md", "benchmark_faces.md", "benchmark_pose.md"))


def _docs_build():
    import importlib.util

    spec = importlib.util.spec_from_file_location("docs_build", README.parent / "docs" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_page_prediction_tables_are_the_commands_json():
    """docs/benchmark.md's --predictions tables are the committed predictions.json printed."""
    from landmark_codecs import bench

    docs = README.parent / "docs"
    blocks = _bench_blocks(_benchmark_pages())
    folders = sorted((docs / "benchmark" / "predictions").iterdir())
    assert len(folders) == 8
    for folder in folders:
        data = json.loads((folder / "predictions.json").read_text())
        per_face = data.get("per_face_nme")
        text = bench.format_predictions(
            [bench.PredictionRow(**r) for r in data["rows"]],
            description=data["description"],
            notes=tuple(data.get("notes", ())),
            per_face_nme=None if per_face is None else {k: np.array(v, dtype=float) for k, v in per_face.items()},
        )
        assert text in blocks, folder.name


def _mkdocs(config: pathlib.Path, site: pathlib.Path) -> subprocess.CompletedProcess:
    pytest.importorskip("mkdocs", reason="the docs site needs mkdocs (the test extra installs it)")
    pytest.importorskip(
        "mkdocstrings_handlers.python", reason="the API reference needs mkdocstrings[python] (the test extra)"
    )
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        capture_output=True,
        text=True,
        cwd=config.parent,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},  # mkdocs-material's banner about its successor
    )


@pytest.fixture(scope="module")
def built_site(tmp_path_factory) -> pathlib.Path:
    """The site as `mkdocs build --strict` writes it (once per test module)."""
    site = tmp_path_factory.mktemp("site") / "site"
    done = _mkdocs(README.parent / "mkdocs.yml", site)
    assert done.returncode == 0, done.stderr[-3000:]
    return site


def _text(html_page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", html_page))


def test_docs_site_builds_strictly_with_every_public_name(built_site):
    """`mkdocs build --strict`: every page link and anchor lands, every docstring cross-reference
    resolves (docs/griffe_roles.py); the API pages (written by docs/build.py, current) give every
    public name of every documented module its own anchor, under its flat name where the package
    exports it; the conventions figure draws what heatmap_to_image gives today."""
    build = _docs_build()
    assert build.check() == []
    pages = {p.parent.name: p.read_text() for p in (built_site / "api").glob("*/index.html")}
    pages["index"] = (built_site / "api" / "index.html").read_text()
    assert len(pages) == len(build.API_PAGES)
    anchors = {a for page in pages.values() for a in re.findall(r'id="(landmark_codecs[^"]*)"', page)}
    flat = set(_public_names("landmark_codecs"))
    for module_name, _, _ in build.API_PAGES:
        for name in _public_names(module_name):
            if not name.startswith("__"):
                ids = {f"{module_name}.{name}"} | ({f"landmark_codecs.{name}"} if name in flat else set())
                assert ids & anchors, f"{module_name}.{name} has no anchor in the API reference"
    text = "\n".join(_text(page) for page in pages.values())
    assert sum(p.count('<span class="gp">&gt;&gt;&gt;') for p in pages.values()) > 50  # doctests: highlighted pycon
    for leftover in (":func:", ":mod:", ":class:", "__all__", "see the module docstring", "::\n"):
        assert leftover not in text, leftover  # roles became links; no dunder block; nothing points nowhere
    assert 'href="../dark/#landmark_codecs.decode_dark"' in pages["codecs"]  # a cross-reference between pages


def test_docs_site_navigates(built_site):
    """At most seven top-level sections, no page over 150 KB, each API page led by its module's
    docstring, search, highlighted code and a light and a dark scheme (issue 43)."""
    home = (built_site / "index.html").read_text()
    tabs = re.findall(r'<li class="md-tabs__item[^"]*">', home)
    assert 2 <= len(tabs) <= 7, len(tabs)
    sizes = {str(p.relative_to(built_site)): p.stat().st_size for p in built_site.rglob("*.html")}
    assert len(sizes) > 30 and max(sizes.values()) <= 150_000, max(sizes.items(), key=lambda kv: kv[1])
    build = _docs_build()
    for module_name, page, _ in build.API_PAGES:
        html_page = built_site / "api" / page.replace(".md", "/index.html").replace("index/index.html", "index.html")
        first = _module_docstring(module_name).split("\n", 1)[0].replace("``", "")
        assert first[:60] in _text(html_page.read_text()), (module_name, first)
    assert (built_site / "search" / "search_index.json").stat().st_size > 100_000
    assert '<span class="kn">import</span>' in home and "data-md-color-scheme" in home  # Pygments' tokens
    assert home.count('name="__palette"') == 2  # the light/dark toggle


def _module_docstring(module_name: str) -> str:
    """A module's docstring, read from its source (torch and mmpose need not be installed)."""
    base = README.parent / "src" / module_name.replace(".", "/")
    path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    return ast.get_docstring(ast.parse(path.read_text()))


def test_docs_strict_build_catches_what_it_checks(tmp_path, caplog):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text(
        "# Index\n\n[a](missing.md) [b](other.md#no-such-heading) [c](https://example.org)\n"
    )
    (docs / "other.md").write_text("# Other\n")
    (tmp_path / "mkdocs.yml").write_text(
        "site_name: t\nstrict: true\nvalidation:\n  unrecognized_links: warn\n  anchors: warn\n  omitted_files: warn\n"
    )
    done = _mkdocs(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert done.returncode != 0
    assert "missing.md" in done.stderr and "no-such-heading" in done.stderr
    roles = _griffe_roles()
    paths = roles._documented()
    link = roles.SphinxRoles._link
    assert (
        link(re.match(roles._ROLE, ":func:`decode_dark`"), "landmark_codecs.bench", "x", paths)
        == "[`decode_dark`][landmark_codecs.decode_dark]"
    )
    assert (
        link(re.match(roles._ROLE, ":func:`~landmark_codecs.metrics.nme`"), "landmark_codecs", "x", paths)
        == "[`nme`][landmark_codecs.metrics.nme]"
    )
    with caplog.at_level("WARNING"):
        assert (
            link(re.match(roles._ROLE, ":func:`decode_darkk`"), "landmark_codecs.bench", "here", paths)
            == "`decode_darkk`"
        )
    assert "here: reference 'decode_darkk' resolves to nothing" in caplog.text
    assert roles._fence_doctests("text\n>>> 1 + 1\n2\n\nmore") == "text\n```pycon\n>>> 1 + 1\n2\n```\n\nmore"


def test_readme_links_land_on_files():
    """README.md is not part of the site, and PyPI shows it without the repository: its links are
    absolute, and those into the repository (Project-URLs' Source) land on files here."""
    meta = (README.parent / "pyproject.toml").read_text()
    source = re.search(r'^Source = "([^"]+)"', meta, re.M).group(1)
    text = re.sub(r"```.*?```", "", README.read_text(), flags=re.S)
    targets = re.findall(r"\[[^\]]*\]\(([^)\s]+)\)", text)
    assert targets and all(re.match(r"https?://", t) for t in targets), [t for t in targets if not t.startswith("http")]
    for target in targets:
        if target.startswith(source + "/blob/main/"):
            assert (README.parent / target.removeprefix(source + "/blob/main/").partition("#")[0]).exists(), target


def _public_names(module_name: str) -> list[str]:
    """``__all__`` of a module, read from its source where its optional extra (torch) is missing."""
    try:
        return list(importlib.import_module(module_name).__all__)
    except ImportError:
        path = README.parent / "src" / (module_name.replace(".", "/") + ".py")
        tree = ast.parse(path.read_text())
        (value,) = (
            n.value
            for n in tree.body
            if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in n.targets)
        )
        return list(ast.literal_eval(value))


def _griffe_roles():
    spec = importlib.util.spec_from_file_location("griffe_roles", README.parent / "docs" / "griffe_roles.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_coming_from_page_states_each_tested_peer_mapping():
    from landmark_codecs.bench import _speed

    page = (README.parent / "docs" / "coming_from.md").read_text()
    for peer in _speed.PEERS:
        assert peer.convention.rsplit(": ", 1)[1] in page, peer.name


def test_quantization_page_example_shows_each_claim():
    """docs/quantization.md: argmax's half-pixel bound, H3R's unbiased samples and exact expectation,
    the exact soft-argmax target."""
    scope = _run_first_example(README.parent / "docs" / "quantization.md")
    coords, inside = scope["coords"], scope["inside"]
    assert np.abs(scope["vanilla"] - coords).max() <= 0.5 and np.abs(scope["vanilla"] - coords).mean() > 0.2
    np.testing.assert_allclose(scope["expected"], inside, atol=1e-9)
    np.testing.assert_allclose(scope["soft"], inside, atol=1e-6)
    # The mean of 200 samples: per axis the rounding's standard deviation is at most 0.5 / sqrt(200).
    assert np.abs(scope["sample_mean"] - inside).max() < 6 * 0.5 / np.sqrt(200)


def test_deploy_page_example_exports_runs_in_onnx_runtime_and_matches_eager(tmp_path, monkeypatch):
    """docs/deploy.md: the head and its decoder as one ONNX graph, run at batch 5 (exported at
    2), equal to eager within 32 float32 ulps of the 256 px coordinates."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxscript", reason="torch.onnx.export(dynamo=True) needs onnxscript (the test extra)")
    pytest.importorskip("onnxruntime", reason="the page runs the graph in ONNX Runtime (the test extra)")
    monkeypatch.chdir(tmp_path)
    scope = _run_first_example(README.parent / "docs" / "deploy.md")
    coords, scores, eager = scope["coords"], scope["scores"], scope["eager"].numpy()
    assert coords.shape == (5, 98, 2) and scores.shape == (5, 98)
    np.testing.assert_allclose(coords, eager, rtol=0, atol=32 * np.finfo(np.float32).eps * 256)
    assert (tmp_path / "landmarker.onnx").exists()


def test_readme_is_short_and_its_codec_table_names_every_codec():
    """The README stays a front page (at most 100 lines; detail lives in docs/ and
    CONTRIBUTING.md), and its "Which codec" table has a row for every registered codec."""
    import landmark_codecs as lc

    text = README.read_text()
    assert len(text.splitlines()) <= 100
    table = text.split("## Which codec", 1)[1].split("\n## ", 1)[0]
    named = set(
        re.findall(
            r"`([a-z_0-9]+)`", "\n".join(line.split("|")[1] for line in table.splitlines() if line.startswith("| `"))
        )
    )
    assert named == set(lc.codec_names())
