"""Command line: ``landmark-codecs bench`` / ``python -m landmark_codecs bench``."""

from __future__ import annotations

import argparse
import pathlib
import sys
from collections.abc import Sequence


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def main(argv: Sequence[str] | None = None) -> int:
    from . import bench

    parser = argparse.ArgumentParser(prog="landmark-codecs", description="Landmark coding primitives: benchmark.")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bench", help="decode error against heatmap resolution, per codec")
    b.add_argument("--codecs", default=",".join(bench.CODECS), help=f"comma-separated, from: {', '.join(bench.CODECS)}")
    b.add_argument("--sizes", type=_int_list, default=list(bench.DEFAULT_SIZES), help="comma-separated heatmap sizes")
    b.add_argument("--landmarks", type=int, default=4096, help="number of synthetic landmarks")
    b.add_argument("--image-size", type=int, default=256, help="crop size in image pixels")
    b.add_argument("--noise", type=float, default=0.0, help="prediction noise, as a fraction of the target's peak (0: none)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--out", type=pathlib.Path, default=None, help="also write results.json and error.svg (the plot) to this folder")
    args = parser.parse_args(argv)
    codecs = [c for c in args.codecs.split(",") if c]
    try:
        rows = bench.run(
            codecs=codecs,
            sizes=args.sizes,
            n_landmarks=args.landmarks,
            image_size=args.image_size,
            noise=args.noise,
            seed=args.seed,
        )
    except ValueError as err:
        print(f"landmark-codecs bench: error: {err}", file=sys.stderr)
        return 2
    table = bench.format_table(rows, image_size=args.image_size, noise=args.noise)
    print(table)
    if args.out is not None:
        config = {k: v for k, v in vars(args).items() if k not in ("command", "out")}
        try:
            written = bench.write_results(rows, args.out, config=config, title=table.splitlines()[0])
        except OSError as err:
            print(f"landmark-codecs bench: error: cannot write to {args.out}: {err.strerror}", file=sys.stderr)
            return 2
        print("wrote " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
