"""``landmark-codecs bench --speed``: each codec's encoder and decoder against a one-pass floor and
against the peers that are installed, timed side by side in one run.

The reference batch is B=32, K=98, 64x64 float32 (PIPNet: its paper's 8x8 grid, stride 32 from a
256 crop). Every round times the floor, ours and the peers once each, interleaved, so all see the
same machine load; the medians' ratios are reported, never seconds alone. Floors: for a decoder,
a bare argmax over its input (the heatmap, PIPNet's score map, or both SimCC label arrays); for
an encoder, allocating and filling arrays of its output's shapes once.

Peers are their libraries' own functions called as their users call them, on the same values;
:data:`PEERS` says how each one's coordinates map to ours (a test checks the mapping wherever
the peer is installed).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import pipnet_neighbors
from .._xp import to_host
from ..codecs import Codec
from . import DEFAULT_CODECS, array_backend, bench_codec, output_kinds, parse_codec, perturbed
from ._timing import device_sync, median_times

__all__ = ["PEERS", "Peer", "reference_inputs", "run_speed", "speed_codec"]

B, K, SIZE, PIPNET_SIZE, IMAGE = 32, 98, 64, 8, 256
SIGMA = 2.0  # heatmap px at 64x64


@dataclass(frozen=True)
class Peer:
    """``call(logits, maps)`` runs the peer on NumPy float32 inputs converted as its users would;
    ``to_ours(out)`` maps its result to ``(B, K, 2)`` ``(x, y)`` in our heatmap pixels."""

    name: str
    module: str  # what must be importable
    codec: str  # our codec it replaces (its decoder)
    prepare: Callable[[np.ndarray, np.ndarray], Callable[[], Any]]
    to_ours: Callable[[Any], np.ndarray]
    convention: str  # the difference to ours; docs/coming_from.md states the formula after the last ": "
    # Where the peer computes the same thing as ours (tests/test_bench.py compares only there):
    # landmarks whose decoded position lies at least ``margin`` heatmap px inside every edge of
    # the map, on the noisy reference maps or (``clean``) on the exact target.
    margin: float = 1.0
    clean: bool = False
    atol: float = 2e-5  # heatmap px: float32 sums over 4096 pixels (~7e-6 seen)


def _kornia(logits: np.ndarray, maps: np.ndarray) -> Callable[[], Any]:
    import torch
    from kornia.geometry.subpix import spatial_soft_argmax2d

    t = torch.from_numpy(logits)
    return lambda: spatial_soft_argmax2d(t)  # default: normalized_coordinates=True


def _dsntnn(logits: np.ndarray, maps: np.ndarray) -> Callable[[], Any]:
    import dsntnn
    import torch

    t = torch.from_numpy(logits)
    return lambda: dsntnn.dsnt(dsntnn.flat_softmax(t))


def _face_alignment(logits: np.ndarray, maps: np.ndarray) -> Callable[[], Any]:
    from face_alignment.utils import get_preds_fromhm

    return lambda: get_preds_fromhm(maps)[0]


def _mmpose(unbiased: bool) -> Callable[[np.ndarray, np.ndarray], Callable[[], Any]]:
    def prepare(logits: np.ndarray, maps: np.ndarray) -> Callable[[], Any]:
        from mmpose.codecs import MSRAHeatmap

        codec = MSRAHeatmap(
            input_size=(IMAGE, IMAGE), heatmap_size=(SIZE, SIZE), sigma=SIGMA, unbiased=unbiased, blur_kernel_size=11
        )
        # one image per call, as mmpose runs it; the instance axes differ between versions
        return lambda: np.stack([np.asarray(codec.decode(maps[i])[0]).reshape(K, 2) for i in range(len(maps))])

    return prepare


def _host64(out: Any) -> np.ndarray:
    return to_host(out).astype(np.float64)


_STRIDE = IMAGE / SIZE
PEERS: tuple[Peer, ...] = (
    Peer(
        "kornia spatial_soft_argmax2d",
        "kornia",
        "soft_argmax",
        _kornia,
        lambda out: (_host64(out) + 1) * (SIZE - 1) / 2,
        "normalized to [-1, 1] with -1 and 1 at the centres of the first and last pixels: x = (x_k + 1) (W - 1) / 2",
    ),
    Peer(
        "dsntnn flat_softmax + dsnt",
        "dsntnn",
        "soft_argmax",
        _dsntnn,
        lambda out: (_host64(out) + 1) * SIZE / 2 - 0.5,
        "normalized to [-1, 1] with -1 and 1 at the map's outer edges: x = (x_d + 1) W / 2 - 0.5",
    ),
    Peer(
        "face-alignment get_preds_fromhm",
        "face_alignment",
        "quarter:rounding=none",
        _face_alignment,
        lambda out: _host64(out) - 0.5,
        "0 at the left edge of pixel 0, a pixel's centre is j + 0.5 (no shift when the maximum is on a border pixel): x = x_fa - 0.5",
    ),
    Peer(
        "mmpose MSRAHeatmap(unbiased=True).decode",
        "mmpose",
        "dark",
        _mmpose(True),
        lambda out: _host64(out) / _STRIDE,
        "input-image pixels over scale_factor = input_size / heatmap_size, our 'legacy': x_h = x_i * W_h / W_i",
        # The published DARK (one finite-difference step on a whole-map blur) equals ours on an
        # exact Gaussian target away from the border (blur radius 5 + the step's 2 px); near the
        # border and on noisy maps it is a different estimator (docs/dark_udp_simcc.md). There
        # its own error is 3.4e-4 px (its blur kernel is cut at 2.5 sigma); ours is 5e-7.
        margin=7.0,
        clean=True,
        atol=5e-4,
    ),
    Peer(
        "mmpose MSRAHeatmap.decode",
        "mmpose",
        "quarter:rounding=none",
        _mmpose(False),
        lambda out: _host64(out) / _STRIDE,
        "input-image pixels over scale_factor = input_size / heatmap_size, our 'legacy': x_h = x_i * W_h / W_i",
        margin=1.75,  # mmpose shifts x only for 1 < x < W - 1 (not at column 1, where we do)
    ),
)


def installed(peer: Peer) -> bool:
    return importlib.util.find_spec(peer.module) is not None


def speed_codec(spec: str, coords: np.ndarray) -> Codec:
    """The codec timed for ``spec``: 64x64 maps of a 256 crop (SimCC: 64 bins per axis; PIPNet:
    its 8x8 grid) with sigma 2 heatmap px, PIPNet's neighbours from the first shape of ``coords``."""
    name = parse_codec(spec)[0]
    size = PIPNET_SIZE if name == "pipnet" else SIZE
    table = pipnet_neighbors(np.asarray(coords[0], dtype=np.float64), num_neighbors=10) if name == "pipnet" else None
    return bench_codec(spec, image_size=IMAGE, size=size, sigma=SIGMA, neighbors=table)


def reference_inputs(spec: str, *, seed: int = 0) -> tuple[np.ndarray, tuple[np.ndarray, ...], np.ndarray | None]:
    """``(keypoints, outputs, logits)`` of the reference batch for the codec ``spec``, NumPy
    float32: keypoints in crop pixels, the codec's exact outputs plus noise of 1% of the peak (the
    decoder's input), and for map codecs the log of that map (soft-argmax's and the peers' logits)."""
    rng = np.random.default_rng(seed)
    coords = rng.uniform(0, IMAGE - 1, size=(B, K, 2))
    codec = speed_codec(spec, coords)
    kinds = output_kinds(codec)
    target = codec.encode(coords, rng=rng).outputs
    noisy = tuple(
        np.asarray(perturbed(t, "map" if kind == "logits" else kind, 0.01, rng, lambda a: a), dtype=np.float32)
        for t, kind in zip(target, kinds)
    )
    logits = np.log(np.clip(noisy[0], 1e-12, None)).astype(np.float32) if kinds[0] in ("map", "logits") else None
    if kinds[0] == "logits" and logits is not None:  # the codec decodes logits (H3R, soft-argmax)
        noisy = (logits,)
    return coords.astype(np.float32), noisy, logits


def run_speed(
    *,
    codecs: list[str] | tuple[str, ...] = DEFAULT_CODECS,
    backend: str = "numpy",
    device: str | None = None,
    repeat: int = 11,
    progress: Callable[[int, int, str], None] | None = None,
) -> str:
    """Time every codec in ``codecs`` (:func:`landmark_codecs.bench.parse_codec` specs) and the
    installed peers; returns the report as text."""
    for spec in codecs:
        parse_codec(spec)
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    to_backend = array_backend(backend, device)
    sync = device_sync(device if backend == "torch" else "cpu")
    xp_empty = _empty(backend, device)
    width = max([13, *(len(c) for c in codecs)])
    lines = [
        f"Speed, backend {backend}{'' if device is None else ' on ' + device}: B={B}, K={K}, {SIZE}x{SIZE} float32 "
        f"(pipnet {PIPNET_SIZE}x{PIPNET_SIZE}); median of {repeat} interleaved rounds",
        "x floor: time / (a bare argmax over the decoder's input | allocating and filling the encoder's output once)",
        f"{'codec':<{width}} {'encode ms':>10} {'x floor':>8} {'decode ms':>10} {'x floor':>8}",
    ]
    peer_lines, skipped = [], []
    for i, spec in enumerate(codecs):
        coords_np, target_np, logits_np = reference_inputs(spec)
        codec = speed_codec(spec, coords_np)
        kinds = output_kinds(codec)
        coords = to_backend(coords_np)
        target = tuple(to_backend(t) for t in target_np)
        shapes = [tuple(t.shape) for t in target_np]
        flats = [t.reshape(B, K, -1) for t in target[: 2 if kinds[0] == "labels" else 1]]
        rng = np.random.default_rng(1)
        # the closures are timed in this iteration, on its own inputs
        cases: dict[str, Callable[[], Any]] = {
            "encode floor": lambda: [xp_empty(s) for s in shapes],  # noqa: B023
            "encode": lambda: codec.encode(coords, rng=rng),  # noqa: B023
            "decode floor": lambda: [f.argmax(-1) for f in flats],  # noqa: B023
            "decode": lambda: codec.decode(*target),  # noqa: B023
        }
        peers = [p for p in PEERS if p.codec == spec]
        for p in peers:
            if installed(p) and logits_np is not None:  # the peers decode maps
                try:
                    cases[p.name] = p.prepare(logits_np, target_np[0])
                except Exception as err:  # a peer that fails to set up is reported, not fatal
                    skipped.append(f"{p.name}: failed to set up ({type(err).__name__}: {err})")
            else:
                skipped.append(f"{p.name}: not installed (pip install {p.module.replace('_', '-')})")
        t = median_times(cases, repeat=repeat, sync=sync)
        lines.append(
            f"{spec:<{width}} {t['encode'] * 1e3:>10.2f} {t['encode'] / t['encode floor']:>7.2f}x "
            f"{t['decode'] * 1e3:>10.2f} {t['decode'] / t['decode floor']:>7.2f}x"
        )
        for p in peers:
            if p.name in t:
                peer_lines.append(
                    f"{p.name:<44} {t[p.name] * 1e3:>9.2f} ms  vs {spec} decode {t['decode'] * 1e3:>8.2f} ms: peer / ours {t[p.name] / t['decode']:>6.2f}x"
                )
        if progress is not None:
            progress(i + 1, len(codecs), f"speed {spec}")
    lines += ["", "Peers, the same maps, side by side in the same rounds (peer / ours > 1: ours is faster)"]
    lines += peer_lines or ["(none installed)"]
    lines += [f"skipped: {s}" for s in dict.fromkeys(skipped)]
    return "\n".join(lines)


def _empty(backend: str, device: str | None) -> Callable[[tuple[int, ...]], Any]:
    if backend == "torch":
        import torch

        return lambda shape: torch.empty(shape, device=device or "cpu").fill_(1.0)
    return lambda shape: np.empty(shape, dtype=np.float32).fill(1.0)
