"""Command line: ``landmark-codecs bench`` / ``python -m landmark_codecs bench``."""

from __future__ import annotations

import argparse
import math
import pathlib
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TextIO

from .codecs import codec_names


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _sizes(text: str) -> list[int]:
    values = _int_list(text)
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive sizes, got {text!r}")
    return values


def _count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value

    return parse


def _amount(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (0.0 <= value < math.inf):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def _positive(text: str) -> float:
    value = _amount(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _pair(text: str) -> tuple[int, int]:
    values = _int_list(text)
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"expected two comma-separated indices I,J, got {text!r}")
    return values[0], values[1]


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's default in its help (where the help does not name it), in 100 columns."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=100, max_help_position=28)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            "default" in text
            or action.default is None
            or action.default is False
            or action.default is argparse.SUPPRESS
        ):
            return text
        return super()._get_help_string(action)


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line and exit 2, without the usage block
        self.exit(2, f"{self.prog}: error: {message}\n")


class _ProgressBar:
    """A tqdm bar on ``stream`` driven by ``progress(done, total, label)`` callbacks (a new bar
    whenever a new run starts counting from 1)."""

    def __init__(self, stream: TextIO) -> None:
        from tqdm import tqdm  # the optional dependency: see _progress_bar

        self.stream, self.tqdm = stream, tqdm
        self.bar: Any = None

    def __call__(self, done: int, total: int, label: str) -> None:
        if self.bar is None or done == 1 or self.bar.total != total:
            if self.bar is not None:
                self.bar.close()
            self.bar = self.tqdm(total=total, file=self.stream, dynamic_ncols=True, leave=True)
        self.bar.set_description_str(label, refresh=False)
        self.bar.update(done - self.bar.n)
        if done == total:
            self.bar.close()
            self.bar = None


def _progress_bar(wanted: bool | None, stream: TextIO) -> _ProgressBar | None:
    """A bar when asked (``--progress``) or by default on a terminal; tqdm draws it."""
    if not (stream.isatty() if wanted is None else wanted):
        return None
    try:
        return _ProgressBar(stream)
    except ImportError:
        if wanted:
            stream.write('no progress bar: tqdm is not installed (pip install "landmark-codecs[bench]")\n')
        return None


def main(argv: Sequence[str] | None = None) -> int:
    from . import bench

    parser = _ArgumentParser(prog="landmark-codecs", description="Landmark coding primitives: benchmark.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_ArgumentParser)
    b = sub.add_parser(
        "bench",
        help="decode error against heatmap resolution, per codec",
        description="Decode error against heatmap resolution, per codec, ending with a verdict per size.",
        formatter_class=_HelpFormatter,
    )
    b.add_argument(
        "--codecs",
        default=",".join(bench.DEFAULT_CODECS),
        help=f"comma-separated codec names ({', '.join(codec_names())}), each with options after colons, e.g. h3r:expected=True:top_k=4 (default: {', '.join(bench.DEFAULT_CODECS)})",
    )
    b.add_argument(
        "--sizes",
        type=_sizes,
        default=list(bench.DEFAULT_SIZES),
        help=f"comma-separated heatmap sizes (default: {','.join(map(str, bench.DEFAULT_SIZES))})",
    )
    b.add_argument("--model", choices=["both", *bench.MODELS], default="both", help="prediction model(s) to run")
    b.add_argument(
        "--noise",
        type=_amount,
        default=0.05,
        help="realistic model: pixel noise as a fraction of the peak (heatmaps); for softmax codecs 0.1x of it is background mass and 10x logit noise",
    )
    b.add_argument(
        "--displacement", type=_amount, default=0.25, help="realistic model: landmark displacement, std in heatmap px"
    )
    b.add_argument(
        "--keypoints",
        type=pathlib.Path,
        default=None,
        help=f"landmarks from .npy (N, K, 2), a 300W/WFLW .csv, a meanface .txt, or a packaged shape: {', '.join((*bench.MEAN_SHAPES, *bench.POSE_LAYOUTS))} (17 keypoints are scored by COCO AP, 16 by PCKh)",
    )
    b.add_argument(
        "--landmarks",
        type=_pair,
        default=None,
        help="eye-corner indices I,J for NME (default: 36,45 for 68 points, 60,72 for 98, 8,9 for 29)",
    )
    b.add_argument(
        "--samples", type=_count(1), default=256, help="synthetic shapes (16 points each) or mean-shape copies"
    )
    b.add_argument("--image-size", type=_count(2), default=256, help="crop size in image pixels")
    b.add_argument("--seed", type=_count(0), default=0, help="seed of every random draw (>= 0)")
    b.add_argument("--backend", choices=["numpy", "torch"], default="numpy", help="the array library the codecs run on")
    b.add_argument("--device", default=None, help="torch device, e.g. cuda (with --backend torch)")
    b.add_argument(
        "--predictions",
        type=pathlib.Path,
        default=None,
        help="decode a network's saved outputs (.npz: heatmaps, landmarks, image_size[, weights, logits, sigma, convention]) with every decoder; report NME, FR@0.1, AUC@0.1",
    )
    b.add_argument(
        "--sigma",
        type=_positive,
        default=None,
        help="with --predictions: the Gaussian target's sigma in heatmap px, for DARK",
    )
    b.add_argument(
        "--logits",
        action="store_true",
        help="with --predictions: the maps are logits of a softmax (overrides the file's logits)",
    )
    b.add_argument(
        "--speed",
        action="store_true",
        help="time encoders and decoders against a one-pass floor and installed peers instead",
    )
    b.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr, drawn by tqdm (default: when it is a terminal)",
    )
    b.add_argument(
        "--verbose",
        action="store_true",
        help="also print the long table (every statistic of every row) before the verdict",
    )
    b.add_argument(
        "--out",
        type=pathlib.Path,
        default=None,
        help="also write results.json, results.csv (every row: the long table) and a PNG plot per model (needs matplotlib: the plot extra) to this folder",
    )
    args = parser.parse_args(argv)
    codecs = [c for c in args.codecs.split(",") if c]
    if not codecs:
        parser.exit(
            2,
            f"landmark-codecs bench: error: argument --codecs: expected comma-separated codecs from {', '.join(codec_names())}, got {args.codecs!r}\n",
        )
    progress = _progress_bar(args.progress, sys.stderr)
    if args.predictions is not None:
        return _predictions(args)
    if args.logits:
        parser.exit(
            2,
            "landmark-codecs bench: error: --logits is for --predictions (the synthetic runs encode their own targets)\n",
        )
    if args.sigma is not None:
        parser.exit(
            2,
            "landmark-codecs bench: error: --sigma is for --predictions (the synthetic runs derive sigma from --sizes)\n",
        )
    try:
        if args.speed:
            from .bench._speed import run_speed

            print(run_speed(codecs=codecs, backend=args.backend, device=args.device, progress=progress))
            return 0
        if args.keypoints is None:
            if args.landmarks is not None:
                raise ValueError("--landmarks needs --keypoints (the synthetic points have no eyes)")
            landmarks = bench.synthetic_landmarks(samples=args.samples, image_size=args.image_size, seed=args.seed)
        else:
            landmarks = bench.load_keypoints(
                args.keypoints,
                image_size=args.image_size,
                samples=args.samples,
                seed=args.seed,
                eye_corners=args.landmarks,
            )
        models = list(bench.MODELS) if args.model == "both" else [args.model]
        options = dict(
            codecs=codecs, sizes=args.sizes, noise=args.noise, displacement=args.displacement, seed=args.seed
        )
        rows = [
            r
            for m in models
            for r in bench.run(
                landmarks, model=m, backend=args.backend, device=args.device, progress=progress, **options
            )
        ]
    except (ValueError, OSError) as err:
        print(f"landmark-codecs bench: error: {err}", file=sys.stderr)
        return 2
    shown = dict(landmarks=landmarks.description, image_size=args.image_size, noise=args.noise)
    shown.update(displacement=args.displacement)
    print(bench.format_report(rows, verbose=args.verbose, **shown))
    if args.out is not None:
        config = {
            k: (str(v) if isinstance(v, pathlib.Path) else v)
            for k, v in vars(args).items()
            if k not in ("command", "out", "progress", "speed", "predictions", "sigma", "logits")
        }
        titles = {
            m: bench.table_title(
                m,
                landmarks=landmarks.description,
                image_size=args.image_size,
                noise=args.noise,
                displacement=args.displacement,
            )
            for m in models
        }
        try:
            written = bench.write_results(rows, args.out, config=config, titles=titles)
        except OSError as err:
            print(f"landmark-codecs bench: error: cannot write to {args.out}: {err.strerror}", file=sys.stderr)
            return 2
        print(bench._wrap("wrote " + ", ".join(p.name for p in written) + f" to {args.out}", "  "))
        if not any(p.suffix == ".png" for p in written):
            print('no plots: matplotlib is not installed (pip install "landmark-codecs[plot]")')
    return 0


def _predictions(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    from .bench import _predictions as predictions
    from .bench._verdict import wrap

    if args.speed or args.keypoints is not None:
        print(
            "landmark-codecs bench: error: --predictions decodes a saved file; it does not combine with --speed or --keypoints",
            file=sys.stderr,
        )
        return 2
    try:
        rows, loaded, per_face, notes = predictions.decode_predictions(
            args.predictions, sigma=args.sigma, eyes=args.landmarks, logits=True if args.logits else None
        )
    except (ValueError, OSError) as err:
        print(f"landmark-codecs bench: error: {err}", file=sys.stderr)
        return 2
    print(predictions.format_predictions(rows, description=loaded.description, notes=notes, per_face_nme=per_face))
    if args.out is not None:
        try:
            args.out.mkdir(parents=True, exist_ok=True)
            config = {
                "predictions": str(args.predictions),
                "sigma": loaded.sigma,
                "logits": loaded.logits,
                "convention": loaded.convention,
                "landmarks": args.landmarks,
            }
            target = args.out / "predictions.json"
            target.write_text(
                json.dumps(
                    {
                        "config": config,
                        "description": loaded.description,
                        "rows": predictions.rows_json(rows),
                        "notes": list(notes),
                        # what the verdict's paired tie test reads (NaN: null)
                        "per_face_nme": {
                            k: [None if np.isnan(v) else float(v) for v in a] for k, a in per_face.items()
                        },
                    },
                    indent=2,
                )
                + "\n"
            )
        except OSError as err:
            print(f"landmark-codecs bench: error: cannot write to {args.out}: {err.strerror}", file=sys.stderr)
            return 2
        written = [target]
        if per_face:
            try:
                predictions.ced_plot(per_face, args.out / "ced.png", title=loaded.description)
                written.append(args.out / "ced.png")
            except ImportError:
                print('no CED plot: matplotlib is not installed (pip install "landmark-codecs[plot]")')
        print(wrap("wrote " + ", ".join(str(p) for p in written), "  "))
    return 0


if __name__ == "__main__":
    sys.exit(main())
