"""The only backend-aware module.

Everything else in the package is written once against the Python array API standard. This
module resolves the namespace of the user's arrays and supplies the few operations the standard
lacks or that one library does much faster natively. Each native path has a standard fallback;
the tests check that the two agree (``tests/test_xp.py``).

torch is never imported here: torch tensors are handled through their own methods, so the core
stays importable, and fast to import, without torch. The one piece that must be a torch class
(the fused-gradient autograd Function) lives in ``_xp_torch``, imported on first use.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import array_api_compat
import numpy as np

Array = Any  # every module annotates arrays with this one alias: any array API standard array
Namespace = Any
F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T", bound=tuple)

_HALF = ("float16", "torch.float16", "torch.bfloat16")
# Array arguments that may be None (absent); every other one passed to namespace() is required.
OPTIONAL = frozenset({"weights", "noise", "loss_map", "normalizer"})


# NumPy 2.1 and later implement the array API standard in the main namespace (astype, isdtype,
# device= keywords): used directly, each call skips a wrapper (a few microseconds, which is most
# of the cost of decoding one instance).
_NATIVE_NUMPY = tuple(int(p) for p in np.__version__.split(".")[:2]) >= (2, 1)


def namespace(**arrays: Array | None) -> Namespace:
    """The array namespace shared by the named arrays (``None`` values of optional ones skipped).

    Raises a TypeError naming each argument and its library when they do not share one, instead
    of array-api-compat's message, which does not say which argument is which, and one naming
    the argument when a required array (any but ``OPTIONAL``) is ``None`` or not an array.
    """
    for name, a in arrays.items():
        if a is None and name not in OPTIONAL:
            raise TypeError(f"{name} must be an array (NumPy, PyTorch or any array API library), got None")
    given = {name: a for name, a in arrays.items() if a is not None}
    kinds = {type(a) for a in given.values()}
    if len(kinds) == 1:
        # one type: its namespace was resolved before (einops' per-type backend cache)
        cached = _NAMESPACES.get(next(iter(kinds)))
        if cached is not None:
            if cached is not np:  # NumPy arrays share the host; other libraries' arrays may not
                _same_device(given)
            return cached
    if given and all(_is_torch_tensor(a) for a in given.values()):
        _same_device(given)
        # torch's namespace without array-api-compat's lru_cached type checks, which
        # torch.compile traces through with a warning per function.
        from array_api_compat import torch as torch_namespace

        return _remember(kinds, torch_namespace)
    if _NATIVE_NUMPY and given and all(type(a) is np.ndarray for a in given.values()):
        # NumPy >= 2.1 is an array API namespace itself, without array-api-compat's wrappers' cost
        return _remember(kinds, np)
    for name, a in given.items():
        if not array_api_compat.is_array_api_obj(a):
            raise TypeError(
                f"{name} must be an array (NumPy, PyTorch or any array API library), "
                f"got {type(a).__module__}.{type(a).__qualname__}{_field_hint(name, a)}"
            )
    try:
        xp = array_api_compat.array_namespace(*given.values())
    except TypeError as err:
        listed = ", ".join(f"{n}: {type(a).__module__}.{type(a).__qualname__}" for n, a in given.items())
        raise TypeError(f"all arrays must come from one array library, got {listed}") from err
    _same_device(given)
    return _remember({type(a) for a in given.values()}, xp)


def numpy_namespace() -> Namespace:
    """What :func:`namespace` resolves NumPy arrays to: NumPy itself (>= 2.1) or array-api-compat's."""
    if _NATIVE_NUMPY:
        return np
    from array_api_compat import numpy as compat_numpy

    return compat_numpy


# type -> namespace, for types whose namespace depends on the type alone (filled by namespace()).
_NAMESPACES: dict[type, Namespace] = {}


def _remember(kinds: set[type], xp: Namespace) -> Namespace:
    if len(kinds) == 1:
        _NAMESPACES[next(iter(kinds))] = xp
    return xp


def _field_hint(name: str, value: Any) -> str:
    """For a NamedTuple of arrays (a ``HeatmapTargets``, ``DecodedLandmarks``, ...) given where one
    of its arrays was meant: which field to pass (the one of the argument's name, if it has one)."""
    fields = [f for f in getattr(value, "_fields", ()) if hasattr(getattr(value, f), "shape")]
    if not fields:
        return ""
    pick = name if name in fields else fields[0]
    return f": pass one of its fields, e.g. {name}=<result>.{pick} (its arrays: {', '.join(fields)})"


def _same_device(arrays: dict[str, Array]) -> None:
    """A ValueError naming each array's device when they are not all on one (instead of the
    library's own error from inside an operation, which names no argument)."""
    if len(arrays) < 2:
        return
    devices = {name: device(a) for name, a in arrays.items()}
    if len({str(d) for d in devices.values()}) > 1:
        where = ", ".join(f"{name} on {d}" for name, d in devices.items())
        raise ValueError(f"all arrays must be on one device, got {where}")


def device(x: Array) -> Any:
    if type(x) is np.ndarray:
        return "cpu"  # array-api-compat's answer, without its chain of type checks (hot on small arrays)
    if _is_torch_tensor(x):
        return x.device  # what array-api-compat returns, without its cached checks (see namespace())
    return array_api_compat.device(x)


def to_host(x: Any, name: str = "x") -> np.ndarray:
    """``x`` as a NumPy array (NumPy, torch on any device, DLPack arrays, nested sequences).

    May share memory with ``x``: copy before writing. For checks and small host-side tables
    built once (e.g. from a mean shape), never in a hot path. Raises a TypeError naming ``name``
    for what is not an array (an object without ``__dlpack__``, a ragged or mixed sequence).
    """
    if isinstance(x, (np.ndarray, np.generic, int, float, complex, bool)):
        return np.asarray(x)
    if isinstance(x, (list, tuple)):
        try:
            return np.asarray(x)
        except (ValueError, TypeError):
            raise TypeError(
                f"{name} must be an array or a nested sequence of numbers of one shape, got a ragged or mixed {type(x).__name__}"
            ) from None
    if _is_torch_tensor(x):
        if x.device.type == "meta":
            raise ValueError(
                f"{name} is a tensor on the meta device, which holds no values to read: pass one on a real device"
            )
        x = x.detach().cpu()
        # NumPy has no bfloat16: float32 holds every bfloat16 value exactly.
        return (x.float() if str(x.dtype) == "torch.bfloat16" else x).numpy()
    if not hasattr(x, "__dlpack__"):
        raise TypeError(
            f"{name} must be an array (NumPy, PyTorch or any array API library), "
            f"got {type(x).__module__}.{type(x).__qualname__}{_field_hint(name, x)}"
        )
    return np.from_dlpack(x)


def is_integral(x: Array) -> bool:
    """Whether ``x`` holds integers, from its dtype alone (no namespace: a neighbour table may
    come from another library than the arrays it indexes)."""
    dtype = x.dtype
    if isinstance(dtype, np.dtype):
        return dtype.kind in "iu"
    return str(dtype).rsplit(".", 1)[-1].startswith(("int", "uint"))


def is_array(x: Any) -> bool:
    return isinstance(x, np.ndarray) or _is_torch_tensor(x) or array_api_compat.is_array_api_obj(x)


def on_device_of(xp: Namespace, table: Array, like: Array, name: str) -> Array:
    """``table`` (a small constant array) in ``like``'s library and on its device.

    A NumPy table is copied to ``like``'s device (a host -> device copy, never device -> host);
    a table of ``like``'s own library must already be on its device.
    """
    if isinstance(table, np.ndarray):
        return table if is_numpy(xp) else xp.asarray(table, device=device(like))
    if namespace(table=table) is not xp or device(table) != device(like):
        raise ValueError(
            f"{name} lives on {type(table).__module__} device {device(table)}, the arrays on {device(like)}: "
            "build it from a mean shape on the arrays' device (or from a NumPy one)"
        )
    return table


def _is_torch_tensor(x: Any) -> bool:
    torch = sys.modules.get("torch")  # never imported here: a tensor exists only if torch is
    return torch is not None and isinstance(x, torch.Tensor)


# Namespace tests by module name, as array-api-compat's (which are lru_cached; see namespace()).
def is_torch(xp: Namespace) -> bool:
    return xp.__name__ in ("torch", "array_api_compat.torch")


def on_host(x: Array) -> bool:
    """Whether ``x``'s values can be read without a device round trip (a NumPy array).

    The policy for small tables (PIPNet's neighbour index): a host table's values are checked
    once with a clear error; a table already on a device is never read back in a hot path.
    """
    return isinstance(x, np.ndarray)


def is_numpy(xp: Namespace) -> bool:
    return xp.__name__ in ("numpy", "array_api_compat.numpy")


def is_jax(xp: Namespace) -> bool:
    return xp.__name__ in ("jax.numpy", "array_api_compat.jax.numpy")


def numpy_signature(arrays: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The arrays' ``(dtype, shape)`` pairs when they are all NumPy arrays, else None: what a
    per-shape plan cache keys on (other libraries' shapes may be symbolic while traced)."""
    if all(type(a) is np.ndarray for a in arrays):
        return tuple((a.dtype, a.shape) for a in arrays)
    return None


def clip(xp: Namespace, x: Array, lo: Any, hi: Any) -> Array:
    """``xp.clip(x, lo, hi)`` (bounds scalars or arrays that broadcast; NaN stays NaN). NumPy's
    ``clip`` is a Python wrapper costing several times its ``maximum`` and ``minimum`` on the
    small arrays of one instance's landmarks: those two instead, the same values and dtype under
    NumPy 2's promotion (NumPy 1's value-based casting would turn float32 clipped at float32's
    largest value into float64, so it keeps ``clip``)."""
    if xp is np:  # NumPy >= 2.1, used as its own namespace
        return np.minimum(np.maximum(x, lo), hi)
    return xp.clip(x, lo, hi)


def constants(xp: Namespace, device: Any, build: Callable[..., T], *key: Any) -> T:
    """``build(xp, device, *key)``: the small constant arrays a kernel needs for one plan (sizes,
    dtypes), made once per plan on NumPy, as einops caches a recipe, and shared (never written:
    read-only on NumPy >= 2.1; array-api-compat's ``clip`` writes into integer bounds, each value
    unchanged). Other backends build them every call: a traced or accelerator array must not
    outlive the call that made it."""
    if not is_numpy(xp):
        return build(xp, device, *key)
    plan = (xp, build, *key)
    made = _CONSTANTS.get(plan)
    if made is None:
        made = build(xp, device, *key)
        if xp is np:
            for a in made:
                a.flags.writeable = False
        if len(_CONSTANTS) >= 256:  # bounded, whatever the sizes a program goes through
            _CONSTANTS.clear()
        _CONSTANTS[plan] = made
    return made


_CONSTANTS: dict[tuple[Any, ...], Any] = {}


def replace_rows(xp: Namespace, mask: Array, values: Array, x: Array) -> Array:
    """``where(mask[..., None], values, x)``: the rows of ``x`` where ``mask`` holds replaced by
    ``values`` (broadcast). NumPy returns ``x`` itself, without a pass over it, when no row is to
    be replaced: the fix for a rare case (a landmark exactly on a border) then costs nothing."""
    if is_numpy(xp) and not mask.any():
        return x
    return xp.where(mask[..., None], values, x)


def flip_last(xp: Namespace, x: Array) -> Array:
    """``x`` reversed along its last axis: a view on NumPy (``np.flip``'s Python wrapper costs
    several times the arithmetic on one instance's landmarks), ``xp.flip`` elsewhere."""
    if is_numpy(xp):
        return x[..., ::-1]
    return xp.flip(x, axis=-1)


def take_along_last(xp: Namespace, x: Array, index: Array) -> Array:
    """``x[..., index]`` per row: gather along the last axis (index broadcasts over the rest)."""
    if is_torch(xp):
        shape = tuple(max(a, b) for a, b in zip(x.shape[:-1], index.shape[:-1]))
        return x.expand(*shape, x.shape[-1]).gather(-1, index.expand(*shape, index.shape[-1]))
    if is_numpy(xp) and x.flags.c_contiguous:
        lead = x.shape[:-1]
        if index.shape[:-1] == lead or np.broadcast_shapes(lead, index.shape[:-1]) == lead:
            # One flat take: ~8x faster than take_along_axis, which builds an index per axis.
            rows = np.arange(math.prod(lead), dtype=np.intp).reshape(*lead, 1) * x.shape[-1]
            return np.take(x.reshape(-1), rows + index)
    if hasattr(xp, "take_along_axis"):
        return xp.take_along_axis(x, index, axis=-1)
    return _take_along_last_fallback(xp, x, index)


def argmax_2d(xp: Namespace, maps: Array) -> tuple[Array, Array]:
    """``(index, value)`` of each map's first maximum in row-major order: ``(..., 1)`` flat index, ``(..., )`` value.

    ``maps`` is ``(..., H, W)``. The tie rule is NumPy's and PyTorch's flat argmax (the first
    maximum; a NaN counts as the maximum). torch's CPU argmax over a 4096-long row is ~6x slower
    than its max (it is not vectorized), so torch takes each row's max, the first row that holds
    the overall maximum, then the first maximum in that row: the same index, from one vectorized
    pass over the maps and two small argmaxes.
    """
    h, w = maps.shape[-2:]
    if is_torch(xp) and h > 1 and w > 1:
        row_max = maps.amax(-1)  # (..., H)
        row = row_max.argmax(-1, keepdim=True)  # (..., 1): the first row holding the maximum
        line = maps.gather(-2, row[..., None].expand(*row.shape, w))[..., 0, :]  # (..., W)
        col = line.argmax(-1, keepdim=True)
        # The value from the map itself (not the row max): its gradient reaches only the anchor.
        return row * w + col, line.gather(-1, col)[..., 0]
    return _argmax_2d_fallback(xp, maps)


def _argmax_2d_fallback(xp: Namespace, maps: Array) -> tuple[Array, Array]:
    index = argmax_index_2d(xp, maps)
    flat = xp.reshape(maps, (*maps.shape[:-2], maps.shape[-2] * maps.shape[-1]))
    return index, take_along_last(xp, flat, index)[..., 0]


def argmax_index_2d(xp: Namespace, maps: Array) -> Array:
    """:func:`argmax_2d`'s index alone, for a caller that reads the value with other samples."""
    if is_torch(xp) and maps.shape[-2] > 1 and maps.shape[-1] > 1:  # argmax_2d's torch path
        return argmax_2d(xp, maps)[0]
    if type(maps) is np.ndarray:  # its methods, without the module functions' Python wrappers
        return maps.reshape(*maps.shape[:-2], maps.shape[-2] * maps.shape[-1]).argmax(axis=-1, keepdims=True)
    return xp.argmax(xp.reshape(maps, (*maps.shape[:-2], maps.shape[-2] * maps.shape[-1])), axis=-1, keepdims=True)


def take_patch(xp: Namespace, flat: Array, rows: Array, cols: Array, width: int) -> Array:
    """``out[..., a, b] = flat[..., rows[..., a] * width + cols[..., b]]``: a patch of row-major maps.

    ``flat`` is ``(..., K, H*W)``; ``rows`` ``(..., K, n)`` and ``cols`` ``(..., K, m)`` are in-map
    row and column indices; the result is ``(..., K, n, m)``. NumPy builds the global flat index in
    one pass over the patch and takes once (the generic gather adds the row offsets in another).
    """
    if is_numpy(xp) and flat.flags.c_contiguous and rows.shape[:-1] == flat.shape[:-1] == cols.shape[:-1]:
        base = np.arange(math.prod(flat.shape[:-1]), dtype=np.intp).reshape(*flat.shape[:-1], 1) * flat.shape[-1]
        return np.take(flat.reshape(-1), (base + rows * width)[..., :, None] + cols[..., None, :])
    index = (rows * width)[..., :, None] + cols[..., None, :]
    n, m = index.shape[-2:]
    out = take_along_last(xp, flat, xp.reshape(index, (*index.shape[:-2], n * m)))
    return xp.reshape(out, (*out.shape[:-1], n, m))


def _take_along_last_fallback(xp: Namespace, x: Array, index: Array) -> Array:
    n = x.shape[-1]
    hit = index[..., None] == xp.arange(n, device=device(x))
    return xp.sum(xp.where(hit, x[..., None, :], xp.zeros((), dtype=x.dtype, device=device(x))), axis=-1)


def place_last(xp: Namespace, values: Array, index: Array, n: int) -> Array:
    """A ``(*S, n)`` array of zeros with ``values`` at position ``index`` of its last axis.

    ``values`` and the integer ``index`` broadcast to the shape ``S``: ``out[..., j] = values``
    where ``j == index``, else 0. NumPy and torch write into zeros (``put`` / ``scatter_``,
    differentiable in ``values``); the standard fallback compares with ``arange(n)``.
    """
    if is_numpy(xp):
        shape = _broadcast_shapes(values.shape, index.shape)
        out = np.zeros((*shape, n), dtype=values.dtype)
        rows = np.arange(math.prod(shape), dtype=np.intp).reshape(shape) * n
        np.put(out, rows + index, np.broadcast_to(values, shape))
        return out
    if is_torch(xp):
        shape = _broadcast_shapes(tuple(values.shape), tuple(index.shape))
        out = values.new_zeros((*shape, n))
        # A contiguous index makes scatter_ ~2.5x faster than an expanded view.
        return out.scatter_(-1, index.expand(shape).contiguous()[..., None], values.expand(shape)[..., None])
    return _place_last_fallback(xp, values, index, n)


def _broadcast_shapes(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """Standard broadcasting of two shapes (plain Python: traceable, no library call)."""
    a, b = (1,) * (len(b) - len(a)) + tuple(a), (1,) * (len(a) - len(b)) + tuple(b)
    return tuple(y if x == 1 else x for x, y in zip(a, b))


def _place_last_fallback(xp: Namespace, values: Array, index: Array, n: int) -> Array:
    hit = xp.arange(n, dtype=index.dtype, device=device(index)) == index[..., None]
    return xp.where(hit, values[..., None], xp.zeros((), dtype=values.dtype, device=device(values)))


def sum_last(xp: Namespace, x: Array) -> Array:
    """Sum over the last axis. NumPy's reduce over a short last axis is ~5x slower than a
    matrix-vector product with ones (BLAS), which gives the same sum, row by row."""
    if is_numpy(xp) and xp.isdtype(x.dtype, "real floating"):
        return x @ np.ones(x.shape[-1], dtype=x.dtype)
    return xp.sum(x, axis=-1)


def sum_second_last(xp: Namespace, x: Array) -> Array:
    """Sum over the second-last axis (the columns' sums of ``(..., H, W)``); NumPy as a
    vector-matrix product with ones, ~1.7x faster than its reduce."""
    if is_numpy(xp) and xp.isdtype(x.dtype, "real floating"):
        return np.ones(x.shape[-2], dtype=x.dtype) @ x
    return xp.sum(x, axis=-2)


def topk_indices(xp: Namespace, x: Array, k: int) -> Array:
    """Indices of the ``k`` largest entries along the last axis, in no particular order.

    Ties at the k-th value may be broken differently by each backend; the values gathered at the
    returned indices are the same multiset on every backend (NaN counting as the largest, as in
    NumPy's sort).
    """
    if is_torch(xp):
        if x.device.type == "cpu":
            return _topk_tournament_torch(xp, x, k)
        return x.topk(k, dim=-1, sorted=False).indices
    if is_numpy(xp):
        n = x.shape[-1]
        if k == n:
            return xp.broadcast_to(xp.arange(n), x.shape)
        rows = np.reshape(x, (-1, n))
        return _topk_tournament(rows, k).reshape(*x.shape[:-1], k)
    if is_jax(xp):
        # XLA's TopK: one pass, where the standard's argsort sorts every row (~140x slower under jit)
        from jax import lax

        return lax.top_k(x, k)[1]
    return _topk_indices_fallback(xp, x, k)


def _topk_indices_fallback(xp: Namespace, x: Array, k: int) -> Array:
    return xp.argsort(x, axis=-1, descending=True, stable=True)[..., :k]


def topk_and_first_maximum(xp: Namespace, maps: Array, k: int) -> tuple[Array, Array, Array, Array]:
    """``(index, values, anchor, scores)`` of ``(..., H, W)`` maps: :func:`topk_indices` of the
    flattened maps and the values there (``(..., k)`` each), and :func:`argmax_2d`'s ``(anchor,
    scores)``.

    NumPy reads the first maximum off the top-k set instead of a second pass over the maps, and
    works in blocks of whole maps (:func:`map_blocks`).
    """
    if not is_numpy(xp):
        h, w = maps.shape[-2:]
        flat = xp.reshape(maps, (*maps.shape[:-2], h * w))
        anchor, scores = argmax_2d(xp, maps)
        index = topk_indices(xp, flat, k)
        return index, take_along_last(xp, flat, index), anchor, scores
    h, w = maps.shape[-2:]
    per_block = max(1, TOPK_BLOCK_BYTES // max(1, h * w * maps.dtype.itemsize))
    return map_blocks(xp, lambda block: _topk_and_first_maximum_numpy(block, k), maps, per_block=per_block)


# Bytes of maps per block of the NumPy top-k: its tournament's later rounds and argpartitions
# touch a few per cent of the maps, so fewer, larger blocks than BLOCK_BYTES' save calls.
# Measured at B=32, K=98, 64x64 float32 on a 2-core AMD EPYC (AVX-512), in one run (top-9 of
# a noisy target, of noise): 2 MB
# 7.7x, 8.0x a max pass; 4 MB 7.2x, 7.3x; 8 MB 7.2x, 7.1x; 16 MB 7.4x, 7.5x.
TOPK_BLOCK_BYTES = 1 << 23


def _topk_and_first_maximum_numpy(maps: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    """When the top-k set's smallest value is below its largest, every pixel holding the maximum
    is in the set, and the first in row-major order is the smallest such index. Maps where that
    fails (the maximum fills the set, NaN) take argmax, so the result is argmax's on any map."""
    lead, (h, w) = maps.shape[:-2], maps.shape[-2:]
    flat = maps.reshape(-1, h * w)
    index = topk_indices(np, flat, k)
    values = take_along_last(np, flat, index)
    top = values.max(axis=-1, keepdims=True)
    anchor = np.where(values == top, index, h * w).min(axis=-1, keepdims=True)
    redo = ~(values.min(axis=-1, keepdims=True) < top)  # also NaN, whose comparisons are False
    if redo.any():
        anchor[redo] = np.argmax(flat[redo[:, 0]], axis=-1)
    # From the map at the anchor, not the set's max: argmax's value, down to the sign of a zero.
    scores = take_along_last(np, flat, anchor)[:, 0]
    return index.reshape(*lead, k), values.reshape(*lead, k), anchor.reshape(*lead, 1), scores.reshape(lead)


# Entries per chunk of the top-k tournament: its first round reads each entry once (as an argmax
# does) and leaves 1/4 as many chunk maxima; measured on 64x64 maps, top-9, against 2, 8, 16, 32
# and mixed rounds (8 then 4, ...): 5-25% faster than each.
TOURNAMENT_CHUNK = 4


def _topk_tournament(rows: np.ndarray, k: int) -> np.ndarray:
    """``np.argpartition``'s top ``k`` of each row of ``(n, N)`` ``rows``, found by a tournament.

    Chunk ``j`` holds the entries ``j, j + m, ..., j + (c-1) m`` (``c`` = TOURNAMENT_CHUNK, ``m =
    N / c``). The ``k`` largest entries lie in the ``k`` chunks of largest maximum: an entry in any
    other chunk has ``k`` chunk maxima, ``k`` distinct entries, at least as large. So the row's top
    ``k`` is the top ``k`` of those ``c k`` candidates, and the chunks' top ``k`` is the same
    problem on ``m`` maxima (recursively). Ties change which entries are picked, never their
    values (a NaN propagates through the maxima and counts as the largest, as in argpartition).

    Why: introselect (argpartition) costs 10 argmax passes over noise and 50 over a map with a
    flat background, where it degenerates on ties; the tournament's first round is one strided
    ``maximum`` pass and the rest touches ``N / c + c k`` entries. Rows whose length has no
    factor ``c``, or too short for the candidates to be fewer than a quarter of them, take
    argpartition directly.
    """
    rows = np.ascontiguousarray(rows)
    n, size = rows.shape
    return _tournament_flat(rows, k) - np.arange(0, n * size, size)[:, None]


def _tournament_flat(rows: np.ndarray, k: int) -> np.ndarray:
    """:func:`_topk_tournament` as indices into ``rows.reshape(-1)`` (C-contiguous ``rows``):
    flat indices save an offset array per round."""
    n, size = rows.shape
    c = TOURNAMENT_CHUNK
    if size % c or 4 * c * k > size:
        return np.argpartition(rows, size - k, axis=-1)[:, size - k :] + np.arange(0, n * size, size)[:, None]
    m = size // c
    # A new array from the first pair, then in place: measured faster than copy-then-maximum and
    # than reshape(n, c, m).max(1).
    chunk_max = np.maximum(rows[:, :m], rows[:, m : 2 * m])
    for i in range(2, c):
        np.maximum(chunk_max, rows[:, i * m : (i + 1) * m], out=chunk_max)
    # chunk_max's flat r*m + j is chunk j of row r, whose entries are rows' r*size + j + i*m.
    first = _tournament_flat(chunk_max, k) + np.arange(0, n * (size - m), size - m)[:, None]
    candidates = (first[:, None, :] + m * np.arange(c)[:, None]).reshape(n, c * k)
    best = np.argpartition(rows.reshape(-1).take(candidates), c * k - k, axis=-1)[:, c * k - k :]
    return candidates.reshape(-1).take(best + np.arange(0, n * c * k, c * k)[:, None])


# torch's CPU tournament: its chunks hold 8 entries (measured on 64x64 maps, top-9: 9-11 ms
# against topk's 19-22 ms; 4 and 16 in between).
TORCH_TOURNAMENT_CHUNK = 8


def _topk_tournament_torch(xp: Namespace, x: Array, k: int) -> Array:
    """:func:`_topk_tournament` in torch on the CPU, where ``topk`` over a whole map costs more
    than a strided ``amax`` pass and ``topk`` over the candidates. Rows whose length has no
    factor of the chunk size, or too short, take ``topk`` itself."""
    size = x.shape[-1]
    c = TORCH_TOURNAMENT_CHUNK
    if size % c or 4 * c * k > size:
        return x.topk(k, dim=-1, sorted=False).indices
    rows = x.reshape(-1, size)
    n, m = rows.shape[0], size // c
    chunks = _topk_tournament_torch(xp, rows.reshape(n, c, m).amax(1), k)
    candidates = (chunks[:, None, :] + m * xp.arange(c, device=x.device)[:, None]).reshape(n, c * k)
    best = rows.gather(1, candidates).topk(k, dim=-1, sorted=False).indices
    return candidates.gather(1, best).reshape(*x.shape[:-1], k)


# Bytes of maps per block in map_blocks, measured on this project's 2-core machine (B=32, K=98,
# 64x64 float32 soft-argmax). NumPy: about 2 MB, so a block's temporaries stay in cache (8x a
# bare argmax to under 6x). torch on the CPU: 16 MB, 43 ms to 20 ms; torch's allocator hands a
# batch-sized temporary fresh pages from the OS on every call (a page fault per 4 KB), while a
# block's (below glibc's 32 MB mmap threshold) are reused (32 MB blocks measured 37 ms).
BLOCK_BYTES = 1 << 21
TORCH_BLOCK_BYTES = 1 << 24


def map_blocks(
    xp: Namespace,
    fn: Callable[[Array], tuple[Array, ...]],
    maps: Array,
    *,
    per_block: int | None = None,
    torch_blocks: bool = True,
) -> tuple[Array, ...]:
    """``fn(maps)`` computed block by block of whole maps on NumPy and torch's CPU, else in one call.

    ``fn`` takes ``(n, H, W)`` maps and returns arrays whose first axis is ``n`` (one result per
    map), and never mixes maps. The results are the same values, bit for bit: each map's
    arithmetic is unchanged. Why blocks: NumPy runs each elementwise pass and reduction over the
    whole array before the next one starts, so a batch larger than the cache streams every
    temporary through memory several times; in blocks of about :data:`BLOCK_BYTES` they stay in
    cache. torch's CPU temporaries pay fresh pages per call unless they are small enough to be
    reused (:data:`TORCH_BLOCK_BYTES`). A GPU runs one kernel per pass over the whole batch, and
    ``torch.compile`` traces one graph: both take the one call. For an ``fn`` whose temporaries
    are much smaller than its maps, ``per_block`` sets NumPy's block in maps, and
    ``torch_blocks=False`` gives torch the one call (its per-operation cost then outweighs any
    page faults).
    """
    lead, (h, w) = maps.shape[:-2], maps.shape[-2:]
    if is_numpy(xp):
        budget = BLOCK_BYTES
    elif (
        torch_blocks and is_torch(xp) and maps.device.type == "cpu" and not sys.modules["torch"].compiler.is_compiling()
    ):
        budget = TORCH_BLOCK_BYTES
    else:
        return fn(maps)
    if per_block is None or not is_numpy(xp):
        per_block = max(1, budget // max(1, h * w * maps.dtype.itemsize))
    flat = xp.reshape(maps, (-1, h, w))
    if flat.shape[0] <= 2 * per_block:
        return fn(maps)
    parts = [fn(flat[start : start + per_block]) for start in range(0, flat.shape[0], per_block)]
    return tuple(xp.reshape(xp.concat(column, axis=0), (*lead, *column[0].shape[1:])) for column in zip(*parts))


def dot_last(xp: Namespace, a: Array, v: Array) -> Array:
    """``sum_k a[..., k] * v[..., k]``: each row's dot product with the matching row of ``v`` (a
    vector or an array of ``a``'s shape), computed from that row alone.

    NumPy's ``a @ v`` (BLAS gemv) is as fast, but its blocking makes a row's last bits depend on
    how many rows come with it (measured: 18 of 59 row subsets differ); ``np.vecdot`` (NumPy >=
    2) calls a dot per row, so a row's result never does. Needed wherever one landmark's bits
    must not depend on the others passed with it (:func:`iterate_rows` passes varying rows).
    """
    if is_numpy(xp):
        if hasattr(np, "vecdot"):
            return np.vecdot(a, v)
        return np.sum(a * v, axis=-1)
    if is_torch(xp):
        return (a * v).sum(-1)  # a @ v (MKL gemv) has the same row dependence, measured
    return xp.vecdot(a, xp.broadcast_to(v, a.shape))


def iterate_rows(
    xp: Namespace,
    step: Callable[..., tuple[Array, ...]],
    rows: tuple[Array, ...],
    state: tuple[Array, ...],
    steps: int,
) -> tuple[Array, ...]:
    """``state = step(*rows, *state)`` applied ``steps`` times; every array holds one row per
    index of its first axis, ``step`` computes each row from that row alone, and ``state[0]``
    is the iterate (``(N,)`` or ``(N, ...)``), whose not moving means a fixed point (``step``'s contract: the rest of the
    state may move, but never moves it again). A row's result must not depend on which rows come
    with it, down to the last bit: no BLAS products over the rows (:func:`dot_last` instead).

    NumPy steps only the rows whose iterate moved in the previous step, so a batch costs what its
    slowest rows need instead of ``steps`` full passes (measured on the soft-argmax target's
    Newton steps, 3136 landmarks on 64 px: 8500 row-steps instead of 34500). Under the contract
    each row ends with the bits the fixed count gives it (tested). Other backends run the fixed
    count on every row: no data-dependent shapes, no host sync.
    """
    if not is_numpy(xp):
        for _ in range(steps):
            state = step(*rows, *state)
        return state
    given = (*rows, *state)
    out = state
    index = None  # the rows of `out` still stepping, once some have stopped
    for _ in range(steps):
        new = step(*rows, *state)
        if index is None:  # every row still steps: the step's results are the rows' latest
            out = new
        else:
            for whole, part in zip(out, new):
                whole[index] = part
        moved = new[0] != state[0]  # NaN never equals itself: such a row keeps its steps
        if not np.count_nonzero(moved):
            break
        if moved.ndim > 1:  # an iterate with several entries per row moves if any does
            moved = moved.reshape(moved.shape[0], -1).any(axis=1)
        if np.count_nonzero(moved) < moved.shape[0]:
            if index is None:  # from now on `out` is written into: memory of its own
                out = tuple(v if _fresh(v, given) else np.array(v, copy=True) for v in out)
            index = np.flatnonzero(moved) if index is None else index[moved]
            rows, new = tuple(r[moved] for r in rows), tuple(v[moved] for v in new)
        state = new
    return out


def _fresh(x: Any, given: tuple[Any, ...]) -> bool:
    """Whether ``x`` is a writeable array in memory of its own, none of the ``given`` ones."""
    return isinstance(x, np.ndarray) and x.flags.owndata and x.flags.writeable and not any(x is g for g in given)


def exp_flushed(xp: Namespace, a: Array, floor: float | None = None) -> Array:
    """``exp(a)`` where ``a >= floor``, else exactly 0 (NaN included).

    The default floor, ``log(smallest_normal) + 1`` of ``a``'s dtype, keeps every result normal:
    a Gaussian's far tail underflows to subnormals, which slow every later pass by 10x or more
    (torch's vectorized CPU exp ~20x, float32 and float64). It changes values by less than 1e-37
    (float32) or 1e-307 (float64); float16, whose smallest normal is 6e-5, flushes below 1.7e-4,
    under its resolution at a peak of 1 (1e-3).

    NumPy: ``fmax`` (NaN to the floor), ``exp``, then a product with the mask, the same bits as
    the fallback's ``where`` in a third of the time (measured on 3136 x 64 float32 profiles:
    ``clip`` and ``where`` cost 4x an ``exp``).
    """
    if floor is None:
        floor = math.log(xp.finfo(a.dtype).smallest_normal) + 1.0
    if is_numpy(xp):
        out = np.fmax(a, floor)
        np.exp(out, out=out)
        return np.multiply(out, a >= floor, out=out)
    return _exp_flushed_fallback(xp, a, floor)


def _exp_flushed_fallback(xp: Namespace, a: Array, floor: float) -> Array:
    zero = xp.zeros((), dtype=a.dtype, device=device(a))
    return xp.where(a >= floor, xp.exp(xp.clip(a, floor, None)), zero)


def exp_shifted(xp: Namespace, x: Array, shift: Array, scale: float) -> Array:
    """``exp(scale * (x - shift))`` as a new array; ``shift`` broadcasts against ``x``.

    NumPy and torch allocate one temporary instead of three (the map-sized passes dominate soft-argmax).
    """
    if is_numpy(xp):
        # inf - inf (a map whose maximum is +inf) is NaN by design: the caller settles those maps.
        with np.errstate(invalid="ignore"):
            out = np.subtract(x, shift)
            if scale != 1.0:
                np.multiply(out, scale, out=out)
            return np.exp(out, out=out)
    if is_torch(xp):
        # In place on the one new tensor (autograd-safe: sub and a scalar mul do not save their
        # outputs, exp saves its own); torch's CPU allocator pays page faults per fresh map.
        out = x - shift
        if scale != 1.0:
            out.mul_(scale)
        return out.exp_()
    return _exp_shifted_fallback(xp, x, shift, scale)


def _exp_shifted_fallback(xp: Namespace, x: Array, shift: Array, scale: float) -> Array:
    z = x - shift
    return xp.exp(z * scale if scale != 1.0 else z)


def scaled_nonnegative(xp: Namespace, x: Array, pre: Array, post: Array) -> Array:
    """``max(x * pre * post, 0)`` as a new array (``pre`` and ``post`` broadcast against ``x``).

    NumPy works in place on the one new array (three passes, one allocation).
    """
    if is_numpy(xp):
        out = np.multiply(x, pre)
        np.multiply(out, post, out=out)
        return np.maximum(out, 0, out=out)
    return _scaled_nonnegative_fallback(xp, x, pre, post)


def _scaled_nonnegative_fallback(xp: Namespace, x: Array, pre: Array, post: Array) -> Array:
    return xp.maximum(x * pre * post, xp.zeros((), dtype=x.dtype, device=device(x)))


def uniform(xp: Namespace, shape: tuple[int, ...], *, dtype: Any, device: Any, rng: Any) -> Array:
    """Uniform [0, 1) noise from an explicit generator, on ``device`` in ``dtype``.

    ``rng`` is a ``numpy.random.Generator`` (drawn on the host, then moved) or a
    ``torch.Generator`` (drawn directly on its own device, which must match ``device``).
    """
    if isinstance(rng, np.random.Generator):
        # Drawn in float32 when the target is float32, so that no value rounds up to 1.0.
        host = rng.random(shape, dtype=np.float32 if dtype == xp.float32 else np.float64)
        if is_numpy(xp):
            return host.astype(dtype, copy=False)
        return xp.asarray(host, dtype=dtype, device=device)
    if type(rng).__module__.startswith("torch") and type(rng).__name__ == "Generator":
        if not is_torch(xp):
            raise TypeError(
                "rng is a torch.Generator but the coordinates are not torch tensors; pass a numpy.random.Generator"
            )
        out = xp.empty(shape, dtype=dtype, device=device)
        if out.device.type not in (rng.device.type, "meta"):
            raise ValueError(
                f"rng is a torch.Generator on {rng.device}, the coordinates are on {out.device}: "
                f"use torch.Generator(device={out.device.type!r})"
            )
        return out.uniform_(0.0, 1.0, generator=rng)
    raise TypeError(
        f"rng must be a numpy.random.Generator or a torch.Generator, got {type(rng).__module__}.{type(rng).__qualname__}"
    )


def dilate_2d(xp: Namespace, x: Array, size: int) -> Array:
    """Binary dilation of a boolean array over its last two axes by a ``size x size`` square (odd).

    ``out[..., i, j]`` is True where any ``x`` in the window centred on ``(i, j)`` (clipped at the
    border) is True. Separable: an OR over ``size - 1`` shifts per axis. NumPy and torch update
    one copy in place; the standard fallback concatenates.
    """
    for axis in (-1, -2):
        if is_numpy(xp):
            x = _dilate_1d_numpy(x, size, axis)
        elif is_torch(xp):
            x = _dilate_1d_torch(x, size, axis)
        else:
            x = _dilate_1d_fallback(xp, x, size, axis)
    return x


def _shifts(size: int, n: int) -> range:
    return range(1, min(size // 2, n - 1) + 1)


def _dilate_1d_numpy(x: Array, size: int, axis: int) -> Array:
    out = np.array(x, copy=True)
    n = x.shape[axis]
    for s in _shifts(size, n):
        np.logical_or(_slice(out, axis, 0, n - s), _slice(x, axis, s, n), out=_slice(out, axis, 0, n - s))
        np.logical_or(_slice(out, axis, s, n), _slice(x, axis, 0, n - s), out=_slice(out, axis, s, n))
    return out


def _dilate_1d_torch(x: Array, size: int, axis: int) -> Array:
    out = x.clone()
    n = x.shape[axis]
    for s in _shifts(size, n):
        _slice(out, axis, 0, n - s).logical_or_(_slice(x, axis, s, n))
        _slice(out, axis, s, n).logical_or_(_slice(x, axis, 0, n - s))
    return out


def _dilate_1d_fallback(xp: Namespace, x: Array, size: int, axis: int) -> Array:
    n = x.shape[axis]
    out = x
    for s in _shifts(size, n):
        out = xp.concat(
            [xp.logical_or(_slice(out, axis, 0, n - s), _slice(x, axis, s, n)), _slice(out, axis, n - s, n)], axis=axis
        )
        out = xp.concat(
            [_slice(out, axis, 0, s), xp.logical_or(_slice(out, axis, s, n), _slice(x, axis, 0, n - s))], axis=axis
        )
    return out


def _slice(x: Array, axis: int, start: int, stop: int) -> Array:
    index = [slice(None)] * x.ndim
    index[axis] = slice(start, stop)
    return x[tuple(index)]


def fused_gradient_applies(xp: Namespace, e: Array, y: Array) -> bool:
    """Whether :func:`with_fused_gradient` is used: torch, a gradient wanted for ``e`` only."""
    return is_torch(xp) and e.requires_grad and not y.requires_grad


def with_fused_gradient(value_and_slope: Any, e: Array, y: Array) -> Array:
    """``value`` with ``d value / d e = slope`` (elementwise), both from one forward pass.

    ``value_and_slope(e, y)`` returns two arrays of ``e``'s shape. Autograd through an elementwise
    loss formula keeps every intermediate and replays ~2x as many passes backward; here the slope
    is formed while the values are, and backward is one multiply. The result is differentiable
    once (no double backward). torch only (see :func:`fused_gradient_applies`).
    """
    from ._xp_torch import FusedElementwise  # imported (not traced) on first use, also under torch.compile

    return FusedElementwise.apply(e, y, value_and_slope)


def non_finite_settled(fn: F) -> F:
    """For decoders that settle non-finite maps themselves (``_common.settle_non_finite``):
    NumPy's warnings about the ``inf - inf`` and ``inf * 0`` on the way are expected there, so
    they are silenced for that call (other libraries do not warn)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not (args and isinstance(args[0], np.ndarray)):  # only NumPy warns (and compile cannot trace errstate)
            return fn(*args, **kwargs)
        with np.errstate(invalid="ignore", over="ignore"):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _is_half(x: Any) -> bool:
    if type(x) is np.ndarray:  # the common case, without str(dtype)'s cost (~5 us)
        return x.dtype == np.float16
    return hasattr(x, "shape") and str(getattr(x, "dtype", "")) in _HALF


def marked(xp: Any, weights: Array) -> Array:
    """The library's one rule for per-landmark weights: which landmarks count. A boolean weight
    as given; a numeric one where it is > 0 (COCO's ``v > 0``): 0, a negative and a NaN weight
    alike leave the landmark out (never a NaN that poisons a loss, nor a negative that flips one)."""
    if xp.isdtype(weights.dtype, "bool"):
        return weights
    return weights > 0


def work_dtype(xp: Namespace, dtype: Any) -> Any:
    """The dtype a computation on ``dtype`` runs in: float32 for the 16-bit floating dtypes
    (float16, bfloat16: their sums and exponentials would lose several bits), else ``dtype``.
    The 16-bit policy's one rule; :func:`in_float32` applies it at a boundary, and the losses
    (whose inputs may mix dtypes) to their promoted dtype."""
    return xp.float32 if xp.finfo(dtype).bits < 32 else dtype


def in_float32(xp: Namespace, kernel: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """``kernel(xp, *args, **kwargs)`` under the library's 16-bit policy, its one home.

    When the positional arrays are all of one 16-bit floating dtype (float16, bfloat16), every
    16-bit floating array among the arguments (``weights`` and ``noise`` included) is cast to
    float32, and every float32 array in the result back to that dtype: the result is the float32
    computation on the same values, rounded once (16-bit sums and exponentials would lose
    several bits). Positional arrays of mixed dtypes are left to the kernel's own promotion
    (float16 scores with float32 offsets give float32 coordinates). A public function applies it
    once, at its boundary, around the kernel it calls.
    """
    arrays = [a for a in args if hasattr(a, "shape") and hasattr(a, "dtype")]
    if not arrays or not _is_half(arrays[0]) or any(a.dtype != arrays[0].dtype for a in arrays):
        return kernel(xp, *args, **kwargs)
    low = arrays[0].dtype
    work = work_dtype(xp, low)

    def up(a: Any) -> Any:
        return xp.astype(a, work) if _is_half(a) else a

    out = kernel(xp, *(up(a) for a in args), **{k: up(v) for k, v in kwargs.items()})

    def down(a: Any) -> Any:
        if isinstance(a, tuple):  # results nest tuples (a codec's outputs) and NamedTuples
            items = [down(i) for i in a]
            return type(a)(*items) if hasattr(a, "_fields") else tuple(items)
        return xp.astype(a, low) if hasattr(a, "dtype") and a.dtype == work else a

    return down(out)
