"""Speed of Adaptive Wing (with its weighted loss map), forward + backward, as ratios in one run.

    python benchmarks/losses.py [--device cpu|cuda] [--repeat 9] [--batch 32]

A (B, 98, 64, 64) float32 torch batch (B=32 by default, the issue's shape). Timed side by side,
interleaved, medians reported as ratios to a plain MSE forward + backward on the same batch:

- ``adaptive_wing_loss`` with ``loss_map=weighted_loss_map(target)`` (the fused path: only pred
  needs a gradient);
- the same through autograd over the formula (what the fused path replaces; selected here by
  letting the target require a gradient too, so it also computes the target's);
- a typical re-implementation with boolean indexing (``delta[delta < theta]``), written here from
  the paper's formula as such re-implementations are, with a float max-pool for the loss map.

This machine is shared and noisy: ratios, not seconds, are the result. Nothing here is asserted.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

import landmark_codecs as lc
from landmark_codecs.bench._timing import device_sync, median_times


def boolean_index_awing(pred, target, omega=14.0, theta=0.5, epsilon=1.0, alpha=2.1):
    """The common re-implementation style: boolean-indexed branches and a float max-pool map."""
    b, k, h, w = target.shape
    dilated = F.max_pool2d(target.reshape(b * k, 1, h, w), 3, stride=1, padding=1).reshape(target.shape)
    weight = 10.0 * (dilated > 0.2).float() + 1.0
    delta = (target - pred).abs()
    small = delta < theta
    large = ~small
    y1, d1, w1 = target[small], delta[small], weight[small]
    y2, d2, w2 = target[large], delta[large], weight[large]
    loss1 = omega * torch.log1p((d1 / epsilon) ** (alpha - y1))
    a = (
        omega
        * (1 / (1 + (theta / epsilon) ** (alpha - y2)))
        * (alpha - y2)
        * ((theta / epsilon) ** (alpha - y2 - 1))
        / epsilon
    )
    c = theta * a - omega * torch.log1p((theta / epsilon) ** (alpha - y2))
    loss2 = a * d2 - c
    return ((loss1 * w1).sum() + (loss2 * w2).sum()) / (loss1.numel() + loss2.numel())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    gen = torch.Generator().manual_seed(0)
    shape = (args.batch, 98, 64, 64)
    coords = torch.rand((*shape[:2], 2), generator=gen) * 63
    target = lc.encode_gaussian(coords, heatmap_size=(64, 64), sigma=2.0)[0].to(args.device)
    pred0 = (target + 0.1 * torch.randn(shape, generator=gen).to(args.device)).clamp(0, 1)
    sync = device_sync(args.device)

    def step(loss_fn, target_grad=False):
        def run():
            pred = pred0.clone().requires_grad_()
            t = target.clone().requires_grad_() if target_grad else target
            loss_fn(pred, t).backward()

        return run

    cases = {
        "mse (floor)": step(F.mse_loss),
        "adaptive_wing_loss + weighted_loss_map": step(
            lambda p, t: lc.adaptive_wing_loss(p, t, loss_map=lc.weighted_loss_map(t))
        ),
        "  same, autograd through the formula": step(
            lambda p, t: lc.adaptive_wing_loss(p, t, loss_map=lc.weighted_loss_map(t)), True
        ),
        "boolean-index re-implementation": step(boolean_index_awing),
    }
    with torch.no_grad():
        ours = lc.adaptive_wing_loss(pred0, target, loss_map=lc.weighted_loss_map(target))
        theirs = boolean_index_awing(pred0, target)
    med = median_times(cases, repeat=args.repeat, sync=sync)
    floor = med["mse (floor)"]
    print(
        f"Adaptive Wing forward+backward, {tuple(shape)} float32 on {args.device} ({torch.get_num_threads()} threads), median of {args.repeat}"
    )
    print(f"values agree: ours {float(ours):.6f}, boolean-index {float(theirs):.6f}")
    print(f"{'':42s} {'ms':>8s} {'x MSE':>7s}")
    for name, m in med.items():
        print(f"{name:42s} {m * 1e3:8.1f} {m / floor:7.2f}")
    bi = med["boolean-index re-implementation"]
    print(
        f"ours is {bi / med['adaptive_wing_loss + weighted_loss_map']:.2f}x faster than the boolean-index re-implementation"
    )


if __name__ == "__main__":
    main()
