"""Train one small CNN per codec and heatmap size on synthetic faces, and report NME.

    python examples/train_synthetic.py                 # the default run: ~8 min on 2 CPU cores
    python examples/train_synthetic.py --long          # 4x the steps (~30 min), a larger test set
    python examples/train_synthetic.py --sizes 8 16 32 --codecs h3r dark --out results/

Each run trains the same network body (a few convolutions, no downloaded weights) with the same
seeds, steps and batch size, and differs only in the codec: its target, its loss and its
decoder. The data are made on the fly: a 19-point face shape, randomly rotated, scaled and
shifted to continuous sub-pixel positions in a 64x64 crop, drawn as small coloured blobs on a
textured, noisy background. NME is the mean landmark error over the outer-eye-corner distance,
in percent, on a held-out test set of fresh faces.

Beside each trained NME the script prints the **quantization-only** NME: the codec's own
target for the test set's true landmarks, decoded with the codec's decoder (no network). The
gap between the two is what training adds; the quantization-only column is what the codec
loses by itself. See docs/training.md for the results and what they say.

Codecs (``--codecs``; the default run trains all but ``awing_boundary``):

- ``argmax``: vanilla integer-centred Gaussian (sigma 1), MSE, argmax decoding.
- ``dark``: sub-pixel Gaussian (sigma 1), MSE, DARK decoding.
- ``awing_dark``: the same target, Adaptive Wing loss with its weighted loss map, DARK.
- ``awing_boundary``: ``awing_dark`` with the rest of Adaptive Wing's recipe: the network also
  predicts a boundary heatmap (``encode_boundaries`` over the face's 7 contour chains, one
  merged channel, in the loss and its weighted map like the landmark channels), and its first
  convolution is a ``CoordConv2d``. One stack, so the boundary coordinates are not fed to a
  next stack as in the paper.
- ``h3r``: randomized-rounding one-hot targets, sampled afresh each step; softmax
  cross-entropy over each map; activation-set decoding (top-9) of the logits.
- ``soft_argmax``: integral regression: soft-argmax of the logits, L1 loss on the coordinates.
- ``pipnet``: PIPNet's score map, offsets and neighbour offsets (4 neighbours) at the map's
  resolution, its loss, decoding with neighbour merging.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import pathlib
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import landmark_codecs as lc
from landmark_codecs.torch import AdaptiveWingLoss, CoordConv2d

INPUT = 64  # the crop is INPUT x INPUT pixels
CODECS = ("argmax", "dark", "awing_dark", "awing_boundary", "h3r", "soft_argmax", "pipnet")
# The default run: every codec but awing_boundary, which docs/training.md compares on its own.
DEFAULT_CODECS = tuple(c for c in CODECS if c != "awing_boundary")
SIGMA = 1.0  # heatmap-pixel sigma of the Gaussian targets


def mean_shape() -> np.ndarray:
    """A 19-point face in [0, 1]^2: jaw (7), brows (4), eye corners (4: outer, inner, inner, outer), nose (2), mouth (2)."""
    t = np.linspace(0.15 * math.pi, 0.85 * math.pi, 7)
    jaw = np.stack([0.5 + 0.42 * np.cos(t), 0.45 + 0.45 * np.sin(t)], axis=-1)
    rest = [(0.25, 0.30), (0.40, 0.28), (0.60, 0.28), (0.75, 0.30)]
    rest += [(0.24, 0.40), (0.40, 0.40), (0.60, 0.40), (0.76, 0.40)]
    rest += [(0.50, 0.50), (0.50, 0.60), (0.38, 0.74), (0.62, 0.74)]
    return np.concatenate([jaw[::-1], np.array(rest)])


EYE_CORNERS = (11, 14)  # outer corners of the two eyes in mean_shape()
K = len(mean_shape())
# mean_shape()'s contours for the boundary target: jaw, brows, eyes (corner to corner), nose, mouth
CHAINS = (tuple(range(7)), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16), (17, 18))


def random_faces(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """``(n, K, 2)`` landmarks in crop pixels: the mean shape rotated (+-20 deg), scaled (0.55-0.8 of
    the crop), shifted (+-5 px) and jittered (0.5 px per point), at continuous positions."""
    shape = torch.asarray(mean_shape(), dtype=torch.float32, device=device) - 0.5
    u = torch.rand(n, 5, generator=generator, device=device)
    angle = (u[:, 0] - 0.5) * math.radians(40)
    scale = (0.55 + 0.25 * u[:, 1]) * INPUT
    shift = (u[:, 2:4] - 0.5) * 10
    cos, sin = torch.cos(angle), torch.sin(angle)
    rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # (n, 2, 2)
    points = torch.einsum("nij,kj->nki", rot, shape) * scale[:, None, None]
    jitter = 0.5 * torch.randn(n, K, 2, generator=generator, device=device)
    return points + jitter + shift[:, None, :] + (INPUT - 1) / 2


def render(landmarks: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``(n, 3, 64, 64)`` images: a smooth random texture, pixel noise, and a coloured blob per landmark."""
    n, device = landmarks.shape[0], landmarks.device
    colours = torch.asarray(np.random.default_rng(0).uniform(0.3, 1.0, (K, 3)), dtype=torch.float32, device=device)
    texture = F.interpolate(
        torch.rand(n, 3, 8, 8, generator=generator, device=device),
        size=(INPUT, INPUT),
        mode="bilinear",
        align_corners=False,
    )
    blobs, _ = lc.encode_gaussian(
        landmarks, heatmap_size=(INPUT, INPUT), sigma=1.2
    )  # crop pixels: one pixel per heatmap pixel
    image = 0.4 * texture + torch.einsum("nkhw,kc->nchw", blobs, colours)
    return image + 0.1 * torch.randn(image.shape, generator=generator, device=device)


class Net(nn.Module):
    """A few 3x3 convolutions; log2(64 / size) of them stride 2; heads of 1x1 convolutions."""

    def __init__(self, size: int, outputs: int, width: int = 48, coord_conv: bool = False) -> None:
        super().__init__()
        layers, channels = [], 3
        for i in range(int(math.log2(INPUT // size))):
            conv = CoordConv2d if coord_conv and i == 0 else nn.Conv2d
            layers += [conv(channels, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
            channels = width
        if coord_conv and size == INPUT:  # no strided layer: the first dilated one gets the channels
            layers += [CoordConv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
            channels = width
        for dilation in (1, 2, 4, 1):
            layers += [
                nn.Conv2d(channels, width, 3, padding=dilation, dilation=dilation),
                nn.BatchNorm2d(width),
                nn.ReLU(),
            ]
            channels = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(width, outputs, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


# Each recipe: the library codec it trains with (a name and options of lc.get_codec, so the
# target, the decoder and the image <-> heatmap convention come from the one registry) and its loss.
RECIPES = {
    "argmax": ("argmax", {"sigma": SIGMA}),
    "dark": ("dark", {"sigma": SIGMA}),
    "awing_dark": ("dark", {"sigma": SIGMA}),
    "awing_boundary": ("dark", {"sigma": SIGMA}),
    "h3r": ("h3r", {"logits": True}),  # sampled targets; its network outputs logits
    "soft_argmax": ("soft_argmax", {"sigma": SIGMA, "logits": True}),
    "pipnet": ("pipnet", {}),
}


@dataclass
class Recipe:
    """A recipe: the library codec (``codec``), the network's output channels and the loss."""

    name: str
    size: int
    table: lc.PIPNetNeighbors | None = None

    def __post_init__(self) -> None:
        codec_name, options = RECIPES[self.name]
        if codec_name == "pipnet":
            options = {"neighbors": self.table}
        self.codec = lc.get_codec(codec_name, image_size=(INPUT, INPUT), heatmap_size=(self.size, self.size), **options)

    @property
    def outputs(self) -> int:
        return K * (3 + 2 * 4) if self.name == "pipnet" else K + (self.name == "awing_boundary")

    def loss(self, out: torch.Tensor, faces: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``faces`` in crop pixels, ``(B, K, 2)``."""
        if self.name == "soft_argmax":  # L1 on the soft-argmax coordinates, in heatmap pixels
            xy, _ = lc.decode_soft_argmax(out, logits=True)
            return F.l1_loss(xy, self.codec.to_heatmap(faces))
        encoded = self.codec.encode(faces, rng=generator)
        if self.name in ("argmax", "dark"):
            return F.mse_loss(out, encoded.outputs[0])
        if self.name == "awing_dark":
            return AdaptiveWingLoss(weighted_loss_map=True)(out, encoded.outputs[0])
        if self.name == "awing_boundary":
            s = (self.size, self.size)
            boundary = lc.encode_boundaries(
                self.codec.to_heatmap(faces), heatmap_size=s, boundaries=CHAINS, sigma=SIGMA
            ).heatmaps
            return AdaptiveWingLoss(weighted_loss_map=True)(out, torch.cat([encoded.outputs[0], boundary], dim=1))
        if self.name == "h3r":
            target, weight = encoded.outputs[0], encoded.weights
            logp = F.log_softmax(out.flatten(2), dim=-1)
            return -(target.flatten(2) * logp).sum(-1).mul(weight).sum() / weight.sum().clamp(min=1)
        return lc.pipnet_loss(*self._split(out), encoded.targets)

    def decode(self, out: torch.Tensor) -> torch.Tensor:
        """The network's outputs -> ``(B, K, 2)`` crop pixels."""
        if self.name == "pipnet":
            return self.codec.decode(*self._split(out)).coords
        return self.codec.decode(out[:, :K]).coords

    def quantization_only(self, faces: torch.Tensor) -> torch.Tensor:
        """The codec's own (expected) target for ``faces`` (crop pixels), decoded: what it loses without a network."""
        codec = dataclasses.replace(self.codec, expected=True) if self.name == "h3r" else self.codec
        outputs = codec.encode(faces).outputs
        if self.name in ("h3r", "soft_argmax"):  # their decoders read logits
            outputs = (torch.log(outputs[0].clamp(min=1e-30)),)
        return codec.decode(*outputs).coords

    def _split(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, _, h, w = out.shape
        scores, offsets, neighbors = out.split([K, 2 * K, 8 * K], dim=1)
        return scores, offsets.reshape(b, K, 2, h, w), neighbors.reshape(b, K, 4, 2, h, w)


def nme(pred: torch.Tensor, truth: torch.Tensor) -> float:
    """Mean point-to-point error over the outer-eye-corner distance, in percent (crop pixels in)."""
    iod = (truth[:, EYE_CORNERS[0]] - truth[:, EYE_CORNERS[1]]).norm(dim=-1)
    return float(((pred - truth).norm(dim=-1).mean(-1) / iod).mean() * 100)


def to_heatmap(x: torch.Tensor, size: int) -> torch.Tensor:
    return lc.image_to_heatmap(x, image_size=(INPUT, INPUT), heatmap_size=(size, size))


def to_image(x: torch.Tensor, size: int) -> torch.Tensor:
    return lc.heatmap_to_image(x, image_size=(INPUT, INPUT), heatmap_size=(size, size))


def train(
    name: str,
    size: int,
    *,
    steps: int,
    batch: int = 32,
    seed: int = 0,
    device: torch.device | str = "cpu",
    lr: float = 2e-3,
    fixed_batch: bool = False,
    progress=None,
) -> tuple[nn.Module, Recipe, list[float]]:
    """Train one network; returns it, its codec and the loss of every step.

    ``fixed_batch=True`` trains on one batch over and over (the smoke test's overfitting check).
    """
    device = torch.device(device)
    torch.manual_seed(seed)  # the network's initial weights: the same for every codec and size
    table = (
        lc.pipnet_neighbors(torch.asarray(mean_shape(), device=device), num_neighbors=4) if name == "pipnet" else None
    )
    codec = Recipe(name, size, table)
    net = Net(size, codec.outputs, coord_conv=name == "awing_boundary").to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    data = torch.Generator(device=device).manual_seed(seed + 1)  # the same faces for every codec
    noise = torch.Generator(device=device).manual_seed(seed + 2)  # H3R's rounding
    faces = random_faces(batch, data, device)
    images = render(faces, data)
    losses = []
    for step in range(steps):
        if not fixed_batch and step:
            faces = random_faces(batch, data, device)
            images = render(faces, data)
        loss = codec.loss(net(images), faces, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(step + 1, steps, losses[-1])
    return net, codec, losses


@torch.no_grad()
def evaluate(net: nn.Module, codec: Recipe, faces: torch.Tensor, images: torch.Tensor) -> tuple[float, float]:
    """``(trained NME, quantization-only NME)`` on the test set, in percent."""
    net.eval()
    pred = torch.cat([codec.decode(net(images[i : i + 256])) for i in range(0, len(images), 256)])
    return nme(pred, faces), nme(codec.quantization_only(faces), faces)


# What each heatmap codec's network outputs, for `landmark-codecs bench --predictions`.
SAVED_OUTPUTS = {
    "argmax": False,
    "dark": False,
    "awing_dark": False,
    "awing_boundary": False,
    "h3r": True,
    "soft_argmax": True,
}


@torch.no_grad()
def save_predictions(
    net: nn.Module, codec: Recipe, faces: torch.Tensor, images: torch.Tensor, folder: pathlib.Path
) -> pathlib.Path | None:
    """Write the test set's network outputs as ``{codec}_{size}.npz`` in the format of
    ``landmark-codecs bench --predictions``; None for PIPNet (its outputs are not heatmaps)."""
    if codec.name not in SAVED_OUTPUTS:
        return None
    net.eval()
    maps = torch.cat([net(images[i : i + 256])[:, :K] for i in range(0, len(images), 256)])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{codec.name}_{codec.size}.npz"
    np.savez_compressed(
        path,
        heatmaps=maps.float().cpu().numpy(),
        landmarks=faces.double().cpu().numpy(),  # crop pixels, the pixel-centre convention of to_heatmap
        image_size=np.array([INPUT, INPUT]),
        logits=np.array(SAVED_OUTPUTS[codec.name]),
        sigma=np.array(SIGMA),
        convention=np.array("pixel_center"),
    )
    return path


def _bar(label: str):
    """A tqdm progress bar of one training run (none without tqdm: ``pip install tqdm``)."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    bar = tqdm(total=None, desc=f"{label:<18}", file=sys.stderr, dynamic_ncols=True)

    def show(done: int, total: int, loss: float) -> None:
        bar.total = total
        bar.set_postfix_str(f"loss {loss:.4g}", refresh=False)
        bar.update(done - bar.n)
        if done == total:
            bar.close()

    return show


def nme_plot(results: list[dict], sizes: list[int], path: pathlib.Path) -> pathlib.Path | None:
    """NME against heatmap size (log-scaled x), one colour, line style and marker per codec: trained
    solid, quantization-only dashed. Written with matplotlib (PNG); None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    markers = "osv^Dx*P"
    fig, ax = plt.subplots(figsize=(7.0, 4.4), dpi=120, layout="constrained")
    for i, codec in enumerate(dict.fromkeys(r["codec"] for r in results)):
        rows = sorted((r for r in results if r["codec"] == codec), key=lambda r: r["size"])
        x = [r["size"] for r in rows]
        (trained,) = ax.plot(x, [r["nme"] for r in rows], marker=markers[i % len(markers)], label=f"{codec}, trained")
        ax.plot(
            x,
            [r["quantization_nme"] for r in rows],
            marker=markers[i % len(markers)],
            linestyle="--",
            color=trained.get_color(),
            alpha=0.6,
            label=f"{codec}, quantization only",
        )
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [f"{s}x{s}" for s in sizes])
    ax.set_xlabel("heatmap size (input 64x64)")
    ax.set_ylabel("NME (%)")
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7)
    ax.set_title("NME on held-out synthetic faces: trained (solid) and the codec alone (dashed)", fontsize=9)
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--codecs", nargs="+", default=list(DEFAULT_CODECS), choices=CODECS, help="default: all but awing_boundary"
    )
    ap.add_argument("--sizes", nargs="+", type=int, default=[8, 32], help="heatmap sizes (powers of 2, 4..64)")
    ap.add_argument("--steps", type=int, default=None, help="training steps per run (default 500; 2000 with --long)")
    ap.add_argument("--long", action="store_true", help="the longer, more faithful run: 4x the steps, 4x the test set")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--test", type=int, default=None, help="test faces (default 512; 2048 with --long)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument(
        "--out", type=pathlib.Path, default=None, help="write results.json and (with matplotlib) nme.png here"
    )
    ap.add_argument(
        "--save-predictions",
        type=pathlib.Path,
        default=None,
        help="write each heatmap codec's test-set outputs here as CODEC_SIZE.npz, for landmark-codecs bench --predictions",
    )
    args = ap.parse_args(argv)
    for s in args.sizes:
        if s < 4 or s > INPUT or s & (s - 1):
            ap.error(f"--sizes: {s} is not a power of 2 between 4 and {INPUT}")
    steps = args.steps or (2000 if args.long else 500)
    n_test = args.test or (2048 if args.long else 512)
    device = torch.device(args.device)
    test_gen = torch.Generator(device=device).manual_seed(10_000 + args.seed)  # never seen in training
    test_faces = random_faces(n_test, test_gen, device)
    test_images = render(test_faces, test_gen)
    print(
        f"{len(args.codecs)} codecs x {len(args.sizes)} sizes, {steps} steps of {args.batch} faces, {n_test} test faces, {device}, seed {args.seed}"
    )
    results = []
    for size in args.sizes:
        for name in args.codecs:
            start = time.perf_counter()
            net, codec, losses = train(
                name,
                size,
                steps=steps,
                batch=args.batch,
                seed=args.seed,
                device=device,
                progress=_bar(f"{name} {size}x{size}"),
            )
            trained, quantized = evaluate(net, codec, test_faces, test_images)
            if args.save_predictions is not None:
                saved = save_predictions(net, codec, test_faces, test_images, args.save_predictions)
                print(f"  saved {saved}" if saved else f"  {name}: outputs are not heatmaps, not saved")
            results.append(
                {
                    "codec": name,
                    "size": size,
                    "nme": trained,
                    "quantization_nme": quantized,
                    "final_loss": float(np.mean(losses[-20:])),
                    "seconds": time.perf_counter() - start,
                }
            )
    print("\nNME (% of the outer-eye-corner distance) on held-out synthetic faces, input 64x64")
    print(f"| codec | {' | '.join(f'{s}x{s} trained | {s}x{s} quantization only' for s in args.sizes)} |")
    print(f"| --- | {' | '.join('---: | ---:' for _ in args.sizes)} |")
    for name in args.codecs:
        cells = []
        for s in args.sizes:
            r = next(r for r in results if r["codec"] == name and r["size"] == s)
            cells.append(f"{r['nme']:.2f} | {r['quantization_nme']:.2f}")
        print(f"| {name} | {' | '.join(cells)} |")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        meta = {
            "steps": steps,
            "batch": args.batch,
            "test": n_test,
            "seed": args.seed,
            "device": str(device),
            "command": " ".join(sys.argv),
        }
        (args.out / "results.json").write_text(json.dumps({"config": meta, "results": results}, indent=2))
        plot = nme_plot(results, args.sizes, args.out / "nme.png")
        print(
            f"wrote {args.out / 'results.json'}"
            + (f" and {plot}" if plot else " (no plot: matplotlib is not installed)")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
