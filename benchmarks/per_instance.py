"""Per-instance speed of the mmpose drop-ins against mmpose's own codecs, in one run.

    python benchmarks/per_instance.py [--repeat 200]

One instance per call, as a data loader's ``__getitem__`` encodes and mmpose's heads decode
(``decode`` on one instance's NumPy outputs): K=17 keypoints at 48x64 maps (192x256 input) and
K=98 at 64x64 (256x256). Each pair is timed interleaved, median of ``repeat`` rounds of 10 calls;
the ratio ours / mmpose's is the result (the CPU, its SIMD level and NumPy's version are printed
with it: a ratio means nothing without them). Needs mmpose (docs/mmpose.md); nothing is asserted.
"""

from __future__ import annotations

import argparse
import functools

import numpy as np

from landmark_codecs.bench._timing import cpu_line, median_times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    import warnings

    warnings.simplefilter("ignore")  # mmcv-lite's import warnings
    from mmpose.codecs import MSRAHeatmap, SimCCLabel, UDPHeatmap

    import landmark_codecs.mmpose as lm

    print(cpu_line())
    print("| call | K | mmpose, ms | ours, ms | ours / mmpose |")
    print("| --- | ---: | ---: | ---: | ---: |")
    rng = np.random.default_rng(0)
    for k, heatmap in ((17, (48, 64)), (98, (64, 64))):
        image = (heatmap[0] * 4, heatmap[1] * 4)
        keypoints = (rng.uniform(0.1, 0.9, (1, k, 2)) * image).astype(np.float32)
        visible = np.ones((1, k), np.float32)
        pairs = {
            "MSRAHeatmap": (lm.MSRAHeatmap(image, heatmap, 2.0), MSRAHeatmap(image, heatmap, 2.0)),
            "MSRAHeatmap(unbiased=True)": (
                lm.MSRAHeatmap(image, heatmap, 2.0, unbiased=True),
                MSRAHeatmap(image, heatmap, 2.0, unbiased=True),
            ),
            "UDPHeatmap": (lm.UDPHeatmap(image, heatmap), UDPHeatmap(image, heatmap)),
            "SimCCLabel": (lm.SimCCLabel(image), SimCCLabel(image)),
        }
        for name, (ours, theirs) in pairs.items():
            encoded = ours.encode(keypoints, visible)
            if name == "SimCCLabel":
                outputs = (encoded["keypoint_x_labels"][0], encoded["keypoint_y_labels"][0])
            else:
                outputs = (encoded["heatmaps"],)
            # bound now (partial), not when called: the loop's variables move on
            decode = {
                "ours": functools.partial(ours.decode, *outputs),
                "mmpose": functools.partial(theirs.decode, *outputs),
            }
            encode = {
                "ours": functools.partial(ours.encode, keypoints, visible),
                "mmpose": functools.partial(theirs.encode, keypoints, visible),
            }
            for call, cases in (("encode", encode), ("decode", decode)):
                t = median_times(cases, repeat=args.repeat, number=10)
                print(
                    f"| {name}.{call} | {k} | {1e3 * t['mmpose']:.3f} | {1e3 * t['ours']:.3f} | {t['ours'] / t['mmpose']:.2f} |"
                )


if __name__ == "__main__":
    main()
