"""JAX as a backend: every call of the public-call registry on ``jax.numpy`` arrays, eagerly and
under ``jax.jit``, equal to NumPy; and the native top-k against the standard's fallback.

Run in a fresh interpreter, not in the test process: JAX starts threads (a later ``os.fork`` in
the suite, a DataLoader's workers, could deadlock) and its compiled CPU code leaves the
floating-point status flags set, which NumPy's next matrix product then reports as a spurious
RuntimeWarning (seen here on ``decode_pipnet``'s NumPy reference)."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("jax", reason="JAX is not installed: pip install the jax extra (CI's full leg does)")

_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import jax
jax.config.update("jax_enable_x64", True)  # float64 cases, as the other backends run them
import jax.numpy as jnp
import numpy as np
from array_api_compat import array_namespace
from public_calls import CALLS, HOST_SIDE, INPUTS, assert_matches_reference, outputs
from landmark_codecs import _xp

mode = {mode!r}
failed = []
if mode == "topk":
    rng = np.random.default_rng(0)
    for case in range(200):
        n = int(rng.integers(1, 40))
        x = rng.permutation(n * 3).reshape(3, n).astype(np.float64)  # distinct values
        if case % 3 == 0:
            x[0, rng.integers(0, n)] = np.nan  # counts as the largest
        k = int(rng.integers(1, n + 1))
        a = jnp.asarray(x)
        xp = array_namespace(a)
        native = np.sort(np.asarray(_xp.topk_indices(xp, a, k)), -1)
        fallback = np.sort(np.asarray(_xp._topk_indices_fallback(xp, a, k)), -1)
        if not (_xp.is_jax(xp) and np.array_equal(native, fallback)):
            failed.append(f"top-k case {{case}}: native {{native.tolist()}} != fallback {{fallback.tolist()}}")
else:
    mode, shard, shards = mode.split("/")  # "eager/0/2": the first of two halves of the calls
    for dtype in (np.float32, np.float64):
        for index, (name, (public, call)) in enumerate(sorted(CALLS.items())):
            if (mode == "jit" and public in HOST_SIDE) or index % int(shards) != int(shard):
                continue
            arrays = {{k: v.astype(dtype) for k, v in INPUTS.items()}}
            reference = [np.asarray(o) for o in outputs(call({{k: v.copy() for k, v in arrays.items()}}))]
            inputs = {{k: jnp.asarray(v) for k, v in arrays.items()}}
            try:
                if mode == "jit":
                    got_all = jax.jit(lambda a: tuple(outputs(call(a))))(inputs)
                else:
                    got_all = outputs(call(inputs))
                assert_matches_reference([np.asarray(o) for o in got_all], reference, dtype, name)
                for k, v in inputs.items():
                    assert np.array_equal(np.asarray(v), arrays[k]), f"{{k}} changed"
            except Exception as err:
                failed.append(f"{{name}} {{np.dtype(dtype)}}: {{type(err).__name__}}: {{str(err).strip().splitlines()[0][:200]}}")
print("\\n".join(failed) if failed else "ok")
"""


def _run(mode: str) -> str:
    code = _SCRIPT.format(tests=str(pathlib.Path(__file__).parent), mode=mode)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


# Two minutes and more in all, in four processes that two workers share evenly (eager halves of
# about 70 and 55 s, jit 45 s, top-k 30 s on 2 cores); thirds cost more than they balance.
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["eager/0/2", "eager/1/2", "jit/0/1"])
def test_every_registry_call_on_jax_equals_numpy(mode):
    """Eagerly every call, and under ``jax.jit`` every call of a training step (all but the host
    side's table builder), in float32 and float64: NumPy's result within 1e-5 / 1e-12, in the
    input's dtype, inputs untouched; jitted, no value is read back and no shape depends on one
    (``mode`` is "eager" or "jit", then which part of the sorted calls: every shards-th from shard)."""
    assert _run(mode) == "ok"


@pytest.mark.slow
def test_jax_top_k_is_the_standard_fallbacks_set():
    """``lax.top_k``, the native op ``_xp.topk_indices`` takes on JAX (the standard's argsort is
    ~30x slower under jit), gives the same index set, NaN counting as the largest."""
    assert _run("topk") == "ok"
