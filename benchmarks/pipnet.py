"""Speed of PIPNet encoding and decoding as ratios to reference implementations, in one run.

    python benchmarks/pipnet.py [--backend numpy|torch] [--device cpu|cuda] [--repeat 11] [--number 5] [--batch 32]

B=32, K=98 (the packaged WFLW mean shape), an 8x8
grid (stride 32 on a 256 crop), 10 neighbours, float32. Timed side by side in interleaved rounds
(each round times ``--number`` back-to-back calls of each), medians reported as ratios:

- ``encode_pipnet`` against a per-landmark Python loop (the way the paper's repository builds its
  targets: one landmark, then one neighbour, at a time), written here as the reference;
- ``decode_pipnet`` (mean and original merges) against a per-landmark Python loop, and against a
  per-image decode in the repository's style (vectorized over landmarks with gathers and a
  list-indexed merge, looping over the images of the batch, as its test script does);
- both against a one-pass floor (a bare argmax over the score maps).

This machine is shared and noisy: ratios, not seconds, are the result. Nothing here is asserted.
"""

from __future__ import annotations

import argparse

import numpy as np

import landmark_codecs as lc
from landmark_codecs.bench import mean_shape
from landmark_codecs.bench._timing import device_sync, median_times


def loop_encode(coords, index, grid):
    """Reference: one landmark and one neighbour at a time (NumPy, float32)."""
    b, k, _ = coords.shape
    n = index.shape[1]
    w, h = grid
    scores = np.zeros((b, k, h, w), np.float32)
    offsets = np.zeros((b, k, 2, h, w), np.float32)
    nb = np.zeros((b, k, n, 2, h, w), np.float32)
    for bi in range(b):
        for i in range(k):
            x, y = coords[bi, i]
            cx, cy = min(int(np.floor(x + 0.5)), w - 1), min(int(np.floor(y + 0.5)), h - 1)
            scores[bi, i, cy, cx] = 1.0
            offsets[bi, i, 0, cy, cx] = x - cx
            offsets[bi, i, 1, cy, cx] = y - cy
            for m in range(n):
                j = index[i, m]
                nb[bi, i, m, 0, cy, cx] = coords[bi, j, 0] - cx
                nb[bi, i, m, 1, cy, cx] = coords[bi, j, 1] - cy
    return scores, offsets, nb


def reverse_lists(index):
    k, n = index.shape
    lists = [[] for _ in range(k)]
    for i in range(k):
        for m in range(n):
            lists[index[i, m]].append((i, m))
    return lists


def loop_decode(scores, offsets, nb, index, lists):
    """Reference: one landmark, then one predictor, at a time (mean merge)."""
    b, k, _h, w = scores.shape
    out = np.zeros((b, k, 2), np.float32)
    for bi in range(b):
        cells = []
        for i in range(k):
            cy, cx = divmod(int(np.argmax(scores[bi, i])), w)
            cells.append((cx, cy))
        for t in range(k):
            cx, cy = cells[t]
            xs, ys = [cx + offsets[bi, t, 0, cy, cx]], [cy + offsets[bi, t, 1, cy, cx]]
            for i, m in lists[t]:
                px, py = cells[i]
                xs.append(px + nb[bi, i, m, 0, py, px])
                ys.append(py + nb[bi, i, m, 1, py, px])
            out[bi, t] = sum(xs) / len(xs), sum(ys) / len(ys)
    return out


def repository_decode(xp, scores, offsets, nb, rev1, rev2, max_len):
    """The repository's style: per image, gathers over landmarks, a list-indexed padded merge."""
    b, k, h, w = scores.shape
    n = nb.shape[2]
    out = []
    for bi in range(b):
        flat = scores[bi].reshape(k, h * w)
        ids = flat.argmax(-1)
        cx, cy = ids % w, ids // w
        ox = offsets[bi, :, 0].reshape(k, h * w)[xp.arange(k), ids]
        oy = offsets[bi, :, 1].reshape(k, h * w)[xp.arange(k), ids]
        nbx = nb[bi, :, :, 0].reshape(k, n, h * w)[xp.arange(k)[:, None], xp.arange(n)[None, :], ids[:, None]]
        nby = nb[bi, :, :, 1].reshape(k, n, h * w)[xp.arange(k)[:, None], xp.arange(n)[None, :], ids[:, None]]
        px, py = cx + ox, cy + oy
        qx, qy = cx[:, None] + nbx, cy[:, None] + nby
        mx = (px + qx[rev1, rev2].reshape(k, max_len).sum(-1)) / (1 + max_len)
        my = (py + qy[rev1, rev2].reshape(k, max_len).sum(-1)) / (1 + max_len)
        out.append(xp.stack([mx, my], -1))
    return xp.stack(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=["numpy", "torch"], default="numpy")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--number", type=int, default=5, help="back-to-back calls per timing")
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    b, k, n, grid = args.batch, 98, 10, (8, 8)
    rng = np.random.default_rng(0)
    mean, source = mean_shape("wflw98"), "WFLW mean shape"
    table_np = lc.pipnet_neighbors(mean, num_neighbors=n)
    faces = (mean - 0.5) * rng.uniform(0.7, 0.9, (b, 1, 1)) + 0.5 + rng.normal(0, 0.01, (b, k, 2))
    coords_np = (np.clip(faces, 0, 0.999) * 8 - 0.5).astype(np.float32)
    targets_np = lc.encode_pipnet(coords_np, grid_size=grid, neighbors=table_np)
    outputs_np = [
        (targets_np.scores + 0.1 * rng.random(targets_np.scores.shape)).astype(np.float32),
        (targets_np.offsets + 0.05 * rng.normal(size=targets_np.offsets.shape)).astype(np.float32),
        (targets_np.neighbor_offsets + 0.05 * rng.normal(size=targets_np.neighbor_offsets.shape)).astype(np.float32),
    ]
    lists = reverse_lists(table_np.index)
    max_len = max(len(v) for v in lists)
    padded = [(v * 11)[:max_len] for v in lists]
    rev1 = [i for row in padded for i, _ in row]
    rev2 = [m for row in padded for _, m in row]
    sync = device_sync(args.device if args.backend == "torch" else "cpu")
    if args.backend == "torch":
        import torch

        xp = torch
        table = lc.pipnet_neighbors(torch.asarray(mean, device=args.device), num_neighbors=n)
        coords = torch.asarray(coords_np, device=args.device)
        outputs = [torch.asarray(o, device=args.device) for o in outputs_np]
        r1, r2 = torch.asarray(rev1, device=args.device), torch.asarray(rev2, device=args.device)
    else:
        xp, table, coords, outputs, r1, r2 = np, table_np, coords_np, outputs_np, np.asarray(rev1), np.asarray(rev2)
    flat = outputs[0].reshape(b, k, -1)

    # The references agree with the library before anything is timed.
    np.testing.assert_array_equal(loop_encode(coords_np, table_np.index, grid)[2], targets_np.neighbor_offsets)
    want = lc.decode_pipnet(*outputs_np, neighbors=table_np, merge="mean")[0]
    np.testing.assert_allclose(loop_decode(*outputs_np, table_np.index, lists), want, atol=1e-5)
    want = lc.decode_pipnet(*outputs_np, neighbors=table_np, merge="original")[0]
    np.testing.assert_allclose(
        repository_decode(np, *outputs_np, np.asarray(rev1), np.asarray(rev2), max_len), want, atol=1e-5
    )

    rows = {
        "encode_pipnet": (
            lambda: lc.encode_pipnet(coords, grid_size=grid, neighbors=table),
            {"per-landmark loop": lambda: loop_encode(coords_np, table_np.index, grid)},
        ),
        "decode_pipnet(mean)": (
            lambda: lc.decode_pipnet(*outputs, neighbors=table, merge="mean"),
            {"per-landmark loop": lambda: loop_decode(*outputs_np, table_np.index, lists)},
        ),
        "decode_pipnet(original)": (
            lambda: lc.decode_pipnet(*outputs, neighbors=table, merge="original"),
            {"per-image, repository style": lambda: repository_decode(xp, *outputs, r1, r2, max_len)},
        ),
    }
    print(
        f"backend={args.backend} device={args.device} B={b} K={k} N={n} grid {grid[0]}x{grid[1]} float32 ({source}), "
        f"median of {args.repeat} rounds of {args.number} calls; the loops run on NumPy"
    )
    for name, (fn, peers) in rows.items():
        # back-to-back calls: each function runs on the caches it leaves
        med = median_times(
            {"ours": fn, "argmax": lambda: flat.argmax(-1), **peers}, repeat=args.repeat, sync=sync, number=args.number
        )
        peers_text = "   ".join(f"{med[p] / med['ours']:6.1f}x faster than {p} ({med[p] * 1e3:.1f} ms)" for p in peers)
        print(
            f"  {name:<24} {med['ours'] * 1e3:7.2f} ms   {med['ours'] / med['argmax']:5.1f}x a bare argmax   {peers_text}"
        )


if __name__ == "__main__":
    main()
