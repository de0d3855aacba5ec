"""The GPU check, in one go (under 5 minutes on a GPU): CUDA tests, bandwidth, CUDA graphs, JSON.

    python benchmarks/gpu.py                          # on a machine with CUDA: everything
    python benchmarks/gpu.py --device cpu --batch 2   # the CPU-checkable parts (what CI runs)

1. Runs the test suite's CUDA tests (``pytest -k cuda``: every test whose id names CUDA; they
   skip without a GPU) and records passed / failed / skipped.
2. Times every public encoder and decoder and Adaptive Wing's forward + backward (with its
   weighted loss map) on B=256, K=98, 64x64 maps, in float32 and float16, with CUDA events
   (``time.perf_counter`` on the CPU), median of ``--repeat`` calls after a warm-up. Each is
   reported as achieved memory bandwidth: the bytes it must move at least (a decoder reads its
   maps once; an encoder writes its maps once; the loss reads prediction and target and writes
   the gradient) over its time, and as a fraction of the bandwidth a large device-to-device copy
   reaches on the same device in the same run (the practical peak). Target: decoders >= 50 %.
3. Checks that each decoder is free of host synchronisation: a CUDA-graph capture of the call
   succeeds (a ``.item()``, a sync or a value-sized allocation inside makes capture fail).
4. Writes everything as JSON (``--out``, default ``gpu.json``) with the device's name.

This machine is shared: the figures are the device's, measured in one run, not assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from backends import _calls, _inputs  # the same calls as the torch-vs-NumPy benchmark

import landmark_codecs as lc

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_cuda_tests() -> dict:
    """``pytest -k cuda`` in a subprocess: the counts, and the summary line."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-k", "cuda", "-p", "no:cacheprovider", "tests"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    summary = (done.stdout.strip().splitlines() or [""])[-1]
    counts = {key: int(n) for n, key in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)", summary)}
    return {"returncode": done.returncode, "summary": summary, "counts": counts, "seconds": time.perf_counter() - start}


def timer(device: str):
    """``median(fn, repeat)`` in seconds: CUDA events on a GPU, perf_counter on the CPU."""
    import torch

    def median(fn, repeat: int) -> float:
        fn()  # warm-up (and any lazy allocation)
        times = []
        for _ in range(repeat):
            if device.startswith("cuda"):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                torch.cuda.synchronize()
                times.append(start.elapsed_time(end) / 1e3)
            else:
                t = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t)
        return float(np.median(times))

    return median


def copy_bandwidth(device: str, median, repeat: int, nbytes: int = 1 << 30) -> float:
    """Bytes per second of a large copy on ``device`` (read + write: 2 bytes moved per byte)."""
    import torch

    n = nbytes // 4 if device.startswith("cuda") else (64 << 20) // 4
    src = torch.ones(n, device=device)
    dst = torch.empty_like(src)
    seconds = median(lambda: dst.copy_(src), repeat)
    return 2 * src.numel() * src.element_size() / seconds


def graph_capturable(fn, device: str) -> str:
    """ "yes" when a CUDA graph captures ``fn`` (no host sync inside), else the error; "n/a" off CUDA."""
    if not device.startswith("cuda"):
        return "n/a"
    import torch

    try:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            fn()  # warm-up on the side stream, as capture requires
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fn()
        graph.replay()
        torch.cuda.synchronize()
        return "yes"
    except Exception as err:  # the reason is the result
        return f"no: {type(err).__name__}: {str(err).splitlines()[0][:120]}"


def measure(device: str, batch: int, repeat: int, dtype_name: str) -> dict:
    import torch

    dtype = getattr(torch, dtype_name)
    b, k, h, w = batch, 98, 64, 64
    arrays = _inputs(b, k, h, w)
    on = [torch.asarray(a, device=device) if isinstance(a, np.ndarray) else a for a in arrays]
    on = [a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in on]
    on[6] = tuple(torch.asarray(a, device=device).to(dtype) for a in arrays[6])
    on[5] = lc.pipnet_neighbors(torch.asarray(np.random.default_rng(0).random((k, 2)), device=device), num_neighbors=10)
    calls = _calls(*on, (w, h))
    maps = on[1]
    map_bytes = maps.numel() * maps.element_size()
    median = timer(device)
    rows = {}
    for name, fn in calls.items():
        seconds = median(fn, repeat)
        moved = (
            map_bytes
            if name.startswith(("decode", "encode_gaussian", "encode_randomized", "encode_soft", "encode_udp"))
            else None
        )
        if name.startswith("decode_simcc"):
            moved = (on[3].numel() + on[4].numel()) * on[3].element_size()
        if name.startswith("decode_pipnet") or name.startswith("encode_pipnet"):
            moved = sum(a.numel() * a.element_size() for a in on[6])
        if name.startswith("encode_simcc"):
            moved = (on[3].numel() + on[4].numel()) * on[3].element_size()
        rows[name] = {"ms": seconds * 1e3, "bytes": moved, "GB/s": None if moved is None else moved / seconds / 1e9}
        if name.startswith("decode"):
            rows[name]["cuda_graph"] = graph_capturable(fn, device)
    pred = (maps.detach() + 0.05).requires_grad_()
    target = maps.detach()

    def awing():
        pred.grad = None
        lc.adaptive_wing_loss(pred, target, loss_map=lc.weighted_loss_map(target)).backward()

    seconds = median(awing, repeat)
    rows["adaptive_wing_loss + weighted_loss_map, forward + backward"] = {
        "ms": seconds * 1e3,
        "bytes": 3 * map_bytes,
        "GB/s": 3 * map_bytes / seconds / 1e9,
    }
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--skip-tests", action="store_true", help="leave out step 1")
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path("gpu.json"))
    args = ap.parse_args(argv)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device here: run with --device cpu for the CPU-checkable parts", file=sys.stderr)
        return 2
    name = (
        torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else f"CPU ({os.cpu_count()} cores)"
    )
    report: dict = {
        "device": name,
        "torch": torch.__version__,
        "batch": args.batch,
        "K": 98,
        "map": [64, 64],
        "repeat": args.repeat,
    }
    if not args.skip_tests:
        report["cuda_tests"] = run_cuda_tests()
        print(f"CUDA tests: {report['cuda_tests']['summary']}")
    median = timer(args.device)
    peak = copy_bandwidth(args.device, median, args.repeat)
    report["copy_GB/s"] = peak / 1e9
    print(f"{name}: a large device copy moves {peak / 1e9:.0f} GB/s (read + write); B={args.batch}, K=98, 64x64")
    for dtype_name in ("float32", "float16"):
        rows = measure(args.device, args.batch, args.repeat, dtype_name)
        for row in rows.values():
            row["fraction_of_copy"] = None if row["GB/s"] is None else row["GB/s"] * 1e9 / peak
        report[dtype_name] = rows
        print(f"\n{dtype_name}:")
        for call, row in rows.items():
            bw = "" if row["GB/s"] is None else f"{row['GB/s']:8.1f} GB/s {100 * row['fraction_of_copy']:6.1f}% of copy"
            graph = f"  graph: {row['cuda_graph']}" if "cuda_graph" in row else ""
            print(f"  {call:<58} {row['ms']:9.3f} ms {bw}{graph}")
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    failed = report.get("cuda_tests", {}).get("counts", {}).get("failed", 0)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
