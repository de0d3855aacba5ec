"""The backend module: native ops agree with their array API fallbacks."""

from __future__ import annotations

import numpy as np
import pytest
from array_api_compat import array_namespace
from helpers import convert, numpy_of
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import landmark_codecs as lc
from landmark_codecs import _xp

rows = st.tuples(st.integers(1, 4), st.integers(1, 40)).flatmap(
    lambda s: hnp.arrays(np.float64, s, elements=st.floats(-1e6, 1e6), unique=True)
)


@given(x=rows, data=st.data())
def test_topk_native_equals_fallback(backend, x, data):
    k = data.draw(st.integers(1, x.shape[-1]))
    a = convert(x, backend)
    xp = array_namespace(a)
    native = numpy_of(_xp.topk_indices(xp, a, k))
    fallback = numpy_of(_xp._topk_indices_fallback(xp, a, k))
    np.testing.assert_array_equal(np.sort(native, -1), np.sort(fallback, -1))
    np.testing.assert_array_equal(np.sort(np.take_along_axis(x, native, -1), -1), np.sort(x, -1)[:, -k:])


def _specials(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """NaN, +inf and -inf at random entries of a copy of ``x`` (about 2% each)."""
    x = x.copy()
    for value in (np.nan, np.inf, -np.inf):
        x[rng.random(x.shape) < 0.02] = value
    return x


@pytest.mark.parametrize("library", ["numpy", "torch"])
@given(
    seed=st.integers(0, 2**32 - 1),
    chunks=st.integers(1, 150),
    levels=st.sampled_from([1, 2, 5, 10**6]),
    special=st.booleans(),
    data=st.data(),
)
@example(seed=0, chunks=512, levels=10**6, special=False, data=None).via("a 64x64 map, top-9: rounds on both")
@example(seed=1, chunks=512, levels=2, special=True, data=None).via("a flat background with NaN and infinities")
def test_topk_tournament_gives_the_top_k_values(library, seed, chunks, levels, special, data):
    """The CPU tournaments (NumPy's and torch's) on rows of ``8 * chunks`` entries, a multiple of
    both chunk sizes, with few distinct values (ties within and across chunks and at the k-th
    value), NaN and infinities: k distinct indices per row whose values are the row's k largest
    (NaN counting as the largest, as in np.sort)."""
    assert 8 % _xp.TOURNAMENT_CHUNK == 0 and 8 % _xp.TORCH_TOURNAMENT_CHUNK == 0
    size = 8 * chunks
    k = 9 if data is None else data.draw(st.one_of(st.integers(1, min(size, 40)), st.integers(1, size)), label="k")
    rng = np.random.default_rng(seed)
    x = rng.integers(0, levels, size=(3, size)).astype(np.float32)
    if special:
        x = _specials(x, rng)
    a = convert(x, library)
    before = numpy_of(a).copy()
    index = numpy_of(_xp.topk_indices(array_namespace(a), a, k))
    np.testing.assert_array_equal(numpy_of(a), before)
    assert index.shape == (3, k)
    assert all(len(set(row.tolist())) == k for row in index)
    np.testing.assert_array_equal(np.sort(np.take_along_axis(x, index, -1), -1), np.sort(x, -1)[:, size - k :])


@given(
    seed=st.integers(0, 2**32 - 1),
    h=st.integers(1, 48),
    w=st.integers(1, 48),
    values=st.sampled_from([(-0.0, 0.0), (-1.0, -0.0, 0.0), (0.0, 1.0, 2.0), (-np.inf,), None]),
    special=st.booleans(),
    data=st.data(),
)
def test_topk_and_first_maximum_is_argmax_and_topk(backend, seed, h, w, values, special, data):
    """The top-k set and the first maximum read off it (NumPy) are argmax's index and value, to
    the sign of a zero, on plateaus as wide as the set or wider, NaN, infinities and all--inf
    maps; the set holds the k largest values."""
    k = data.draw(st.integers(1, min(h * w, 12)), label="k")
    rng = np.random.default_rng(seed)
    maps = rng.normal(size=(2, 3, h, w)) if values is None else rng.choice(np.array(values), size=(2, 3, h, w))
    if special:
        maps = _specials(maps, rng)
    a = convert(maps, backend)
    index, got, anchor, scores = (numpy_of(v) for v in _xp.topk_and_first_maximum(array_namespace(a), a, k))
    flat = maps.reshape(2, 3, h * w)
    want = flat.argmax(-1)[..., None]
    np.testing.assert_array_equal(anchor, want)
    want_scores = np.take_along_axis(flat, want, -1)[..., 0]
    np.testing.assert_array_equal(scores, want_scores)
    np.testing.assert_array_equal(np.signbit(scores), np.signbit(want_scores))
    np.testing.assert_array_equal(got, np.take_along_axis(flat, index, -1))
    np.testing.assert_array_equal(np.sort(got, -1), np.sort(flat, -1)[..., h * w - k :])


@given(x=rows, seed=st.integers(0, 2**32 - 1))
def test_take_along_last_native_equals_fallback(backend, x, seed):
    index = np.random.default_rng(seed).integers(0, x.shape[-1], size=(x.shape[0], 3))
    a, i = convert(x, backend), convert(index, backend)
    xp = array_namespace(a)
    want = np.take_along_axis(x, index, -1)
    np.testing.assert_array_equal(numpy_of(_xp.take_along_last(xp, a, i)), want)
    np.testing.assert_array_equal(numpy_of(_xp._take_along_last_fallback(xp, a, i)), want)


@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
@pytest.mark.parametrize("index_shape", [(2, 3, 4, 2), (2, 1, 1, 1), (1, 3, 1, 5)])
def test_take_along_last_broadcasts_index_over_leading_axes(backend, layout, index_shape):
    """The index broadcasts against x's leading axes (NumPy's flat-take path and its fallback)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 4, 6)) if layout == "contiguous" else rng.normal(size=(2, 3, 6, 4)).swapaxes(-1, -2)
    index = rng.integers(0, 6, size=index_shape)
    want = np.take_along_axis(x, np.broadcast_to(index, (2, 3, 4, index_shape[-1])), -1)
    a, i = convert(x, backend), convert(index, backend)
    xp = array_namespace(a)
    np.testing.assert_array_equal(numpy_of(_xp.take_along_last(xp, a, i)), want)
    np.testing.assert_array_equal(numpy_of(_xp._take_along_last_fallback(xp, a, i)), want)


@pytest.mark.parametrize("vector", [True, False])
def test_dot_last_native_equals_fallback_and_ignores_the_other_rows(backend, vector):
    """Each row's dot product, equal to the sum of products; on NumPy a row's bits do not depend
    on which rows come with it (BLAS gemv's do)."""
    rng = np.random.default_rng(0)
    x = rng.random((300, 64)) ** 8
    v = np.arange(64.0) if vector else rng.normal(size=(300, 64))
    a, b = convert(x, backend), convert(v, backend)
    xp = array_namespace(a)
    got = numpy_of(_xp.dot_last(xp, a, b))
    # Summation order is the library's: each of the 64 products may carry its rounding into the
    # sum, so the error is bounded by 64 eps times the sum of magnitudes (v's signs mix).
    np.testing.assert_allclose(
        got, (x * v).sum(-1), rtol=0, atol=64 * np.finfo(np.float64).eps * np.abs(x * v).sum(-1).max()
    )
    if backend == "numpy":
        for m in range(1, 40):
            rows = np.sort(rng.choice(300, m, replace=False))
            part = _xp.dot_last(np, x[rows], v if vector else v[rows])
            np.testing.assert_array_equal(part, got[rows])


@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 30), steps=st.integers(0, 12))
def test_iterate_rows_native_equals_the_fixed_count(backend, seed, rows, steps):
    """NumPy's frozen rows give the fixed count's state: rows that converge at different steps
    (Newton for a square root, exact at a fixed point), rows that never settle (a sign flip),
    NaN rows, and a second state entry that keeps moving after the iterate stops."""
    rng = np.random.default_rng(seed)
    target = rng.choice([0.25, 2.0, 1e6, np.nan], size=rows)
    kind = rng.random(rows) < 0.7  # True: Newton, False: flip forever

    def step(target, kind, x, count):
        newton = 0.5 * (x + target / x)
        return np.where(kind, newton, -x), count + 1.0

    start = (np.ones(rows), np.zeros(rows))
    want = start
    for _ in range(steps):
        want = step(target, kind, *want)
    got = _xp.iterate_rows(np, step, (target, kind), start, steps)
    np.testing.assert_array_equal(got[0], want[0])
    # The count of a frozen row stops with it: only the iterate is promised.
    assert np.all(got[1] <= want[1])
    assert start[0].tolist() == [1.0] * rows  # inputs untouched
    if backend != "numpy":  # the other backends run the fixed count
        a = convert(target, backend)
        xp = array_namespace(a)
        k = convert(kind, backend)

        def step_xp(target, kind, x, count):
            return xp.where(kind, 0.5 * (x + target / x), -x), count + 1.0

        other = _xp.iterate_rows(xp, step_xp, (a, k), (convert(start[0], backend), convert(start[1], backend)), steps)
        np.testing.assert_array_equal(numpy_of(other[0]), want[0])
        np.testing.assert_array_equal(numpy_of(other[1]), want[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_flushed_native_equals_fallback(backend, dtype):
    """The same bits as the fallback's where: 0 below the floor, for NaN and -inf, exp above
    (+inf included); no subnormal comes out."""
    floor = float(np.log(np.finfo(dtype).smallest_normal) + 1.0)
    edges = [
        floor,
        np.nextafter(floor, 0),
        np.nextafter(floor, -np.inf),
        floor - 1,
        0.0,
        -0.0,
        1.0,
        np.nan,
        np.inf,
        -np.inf,
    ]
    x = (
        np.concatenate([np.array(edges), np.random.default_rng(0).uniform(2 * floor, 5, size=200)])
        .astype(dtype)
        .reshape(15, 14)
    )
    a = convert(x, backend)
    xp = array_namespace(a)
    native, fallback = numpy_of(_xp.exp_flushed(xp, a, floor)), numpy_of(_xp._exp_flushed_fallback(xp, a, floor))
    np.testing.assert_array_equal(native, fallback)
    with np.errstate(invalid="ignore"):
        want = np.where(x >= floor, np.exp(x.astype(np.float64)), 0)
    # Against the exact exp (float64 of the same inputs): each library's exp is within a few
    # ulps of it (NumPy's and torch's SIMD exp document at most 4); the zeros are the same entries.
    np.testing.assert_allclose(native, want, rtol=4 * np.finfo(dtype).eps, atol=0)
    np.testing.assert_array_equal(native == 0, want == 0)
    assert native.dtype == dtype and not np.any((native != 0) & (np.abs(native) < np.finfo(dtype).smallest_normal))


@pytest.mark.parametrize("scale", [1.0, 2.5])
def test_exp_shifted_native_equals_fallback(backend, scale):
    x = np.random.default_rng(0).normal(size=(3, 4, 5))
    shift = x.max(axis=(-2, -1), keepdims=True)
    a, s = convert(x, backend), convert(shift, backend)
    xp = array_namespace(a)
    want = np.exp(scale * (x - shift))
    np.testing.assert_allclose(numpy_of(_xp.exp_shifted(xp, a, s, scale)), want, rtol=1e-14)
    np.testing.assert_allclose(numpy_of(_xp._exp_shifted_fallback(xp, a, s, scale)), want, rtol=1e-14)
    np.testing.assert_array_equal(numpy_of(a), x)  # the input is never written to


def test_uniform_from_numpy_generator_on_each_backend(backend):
    a = convert(np.zeros(1, dtype=np.float32), backend)
    xp = array_namespace(a)
    u = _xp.uniform(xp, (1000,), dtype=a.dtype, device=_xp.device(a), rng=np.random.default_rng(0))
    un = numpy_of(u)
    assert un.dtype == np.float32 and un.shape == (1000,) and 0 <= un.min() and un.max() < 1


def test_namespace_names_the_arguments():
    with pytest.raises(TypeError, match="coords must be an array"):
        _xp.namespace(coords=[1.0, 2.0])


@given(
    x=hnp.arrays(np.bool_, st.tuples(st.integers(0, 3), st.integers(1, 9), st.integers(1, 9))),
    size=st.sampled_from([1, 3, 5, 7, 9, 21]),
)
def test_dilate_native_equals_fallback_and_oracle(backend, x, size):
    from scipy.ndimage import maximum_filter

    want = maximum_filter(x, size=(1, size, size), mode="nearest") if x.size else x
    a = convert(x, backend)
    xp = array_namespace(a)
    for axis_pass in (_xp.dilate_2d(xp, a, size), _fallback_dilate(xp, a, size)):
        np.testing.assert_array_equal(numpy_of(axis_pass), want)
    np.testing.assert_array_equal(numpy_of(a), x)


def _fallback_dilate(xp, a, size):
    return _xp._dilate_1d_fallback(xp, _xp._dilate_1d_fallback(xp, a, size, -1), size, -2)


@pytest.mark.parametrize("shapes", [((2, 3), (2, 3)), ((2, 3, 4), (2, 3, 1)), ((2, 1), (2, 5)), ((3,), (2, 3))])
def test_place_last_native_equals_fallback(backend, shapes):
    values_shape, index_shape = shapes
    rng = np.random.default_rng(2)
    values, index = rng.normal(size=values_shape), rng.integers(0, 7, size=index_shape)
    shape = np.broadcast_shapes(values_shape, index_shape)
    want = np.where(
        np.arange(7) == np.broadcast_to(index, shape)[..., None], np.broadcast_to(values, shape)[..., None], 0.0
    )
    v, i = convert(values, backend), convert(index, backend)
    xp = array_namespace(v)
    np.testing.assert_array_equal(numpy_of(_xp.place_last(xp, v, i, 7)), want)
    np.testing.assert_array_equal(numpy_of(_xp._place_last_fallback(xp, v, i, 7)), want)


def test_place_last_is_differentiable_in_the_values():
    torch = pytest.importorskip("torch")
    values = torch.rand(2, 3, dtype=torch.float64, requires_grad=True)
    index = torch.tensor([[0, 4, 2], [1, 1, 3]])
    assert torch.autograd.gradcheck(lambda v: _xp.place_last(array_namespace(v), v, index, 5), (values,))


@pytest.mark.parametrize("axis", [-1, -2])
def test_row_and_column_sums_native_equal_sum(backend, axis):
    x = np.random.default_rng(3).normal(size=(4, 2, 5, 17))
    fn = _xp.sum_last if axis == -1 else _xp.sum_second_last
    a = convert(x, backend)
    np.testing.assert_allclose(numpy_of(fn(array_namespace(a), a)), x.sum(axis), rtol=1e-13, atol=1e-13)
    nan = x.copy()
    nan[1, 0, 2, 5] = np.nan  # a NaN stays in its own row (column)
    got = numpy_of(fn(array_namespace(a), convert(nan, backend)))
    assert np.isnan(got[1, 0, 2 if axis == -1 else 5]) and np.isnan(got).sum() == 1


@given(seed=st.integers(0, 2**32 - 1), lead=st.sampled_from([(3,), (2, 4)]), n=st.integers(1, 5))
def test_take_patch_native_equals_fallback(backend, seed, lead, n):
    """NumPy's one-pass global index and torch's gather equal the generic take_along_last path."""
    rng = np.random.default_rng(seed)
    h, w = 6, 7
    flat = rng.random((*lead, h * w))
    rows, cols = rng.integers(0, h, (*lead, n)), rng.integers(0, w, (*lead, n + 1))
    x, r, c = convert(flat, backend), convert(rows, backend), convert(cols, backend)
    xp = array_namespace(x)
    got = numpy_of(_xp.take_patch(xp, x, r, c, w))
    index = (rows * w)[..., :, None] + cols[..., None, :]
    want = np.take_along_axis(flat, index.reshape(*lead, -1), axis=-1).reshape(*lead, n, n + 1)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(
        got,
        flat.reshape(*lead, h, w)[
            (*np.indices((*lead, n, n + 1))[: len(lead)], rows[..., :, None], cols[..., None, :])
        ],
    )


@settings(max_examples=60)
@given(
    seed=st.integers(0, 2**32 - 1),
    h=st.integers(1, 6),
    w=st.integers(1, 6),
    levels=st.integers(1, 3),
    nan=st.booleans(),
)
def test_argmax_2d_is_the_first_flat_maximum(backend, seed, h, w, levels, nan):
    """Ties (few levels) and NaN (counts as the maximum) included: the two-stage torch path
    returns NumPy's flat argmax and its value."""
    rng = np.random.default_rng(seed)
    maps = rng.integers(0, levels, size=(3, 2, h, w)).astype(np.float64)
    if nan:
        maps[rng.random(maps.shape) < 0.15] = np.nan
    a = convert(maps, backend)
    index, value = _xp.argmax_2d(array_namespace(a), a)
    want = maps.reshape(3, 2, h * w).argmax(-1)
    np.testing.assert_array_equal(numpy_of(index)[..., 0], want)
    np.testing.assert_array_equal(
        numpy_of(value), np.take_along_axis(maps.reshape(3, 2, -1), want[..., None], -1)[..., 0]
    )
    fallback_index, _ = _xp._argmax_2d_fallback(array_namespace(a), a)
    np.testing.assert_array_equal(numpy_of(fallback_index), numpy_of(index))


def test_torch_fast_path_resolves_what_array_api_compat_resolves():
    """namespace() and device() skip array-api-compat's cached checks for tensors (torch.compile
    warns on each); they must give the same answers, Parameters and mixed inputs included."""
    torch = pytest.importorskip("torch")
    import array_api_compat

    t, p = torch.zeros(2), torch.nn.Parameter(torch.zeros(2))
    assert _xp.namespace(a=t, b=p) is array_api_compat.array_namespace(t, p)
    assert _xp.device(p) == array_api_compat.device(p) and _xp.is_torch(_xp.namespace(a=t))
    assert not _xp.is_numpy(_xp.namespace(a=t)) and _xp.is_numpy(_xp.namespace(a=np.zeros(2)))
    with pytest.raises(TypeError, match=r"one array library, got a: torch.Tensor, b: numpy.ndarray"):
        _xp.namespace(a=t, b=np.zeros(2))


@pytest.mark.parametrize(
    "decode",
    [
        lambda m: lc.decode_soft_argmax(m, logits=True),
        lambda m: lc.decode_soft_argmax(m, logits=False, beta=2.0),
        lambda m: lc.decode_randomized_rounding(m, logits=True, top_k=4),
        lambda m: lc.decode_randomized_rounding(m, logits=False),
    ],
)
@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_map_blocks_gives_the_one_call_result_bit_for_bit(decode, library, monkeypatch):
    """NumPy and torch's CPU decode large batches block by block: the same bits as one call,
    also with NaN, +inf and -inf maps and any leading shape, and the blocks never mix maps."""
    rng = np.random.default_rng(3)
    maps = rng.normal(size=(3, 7, 6, 9))
    maps[0, 1] = np.nan
    maps[1, 2, 3, 4] = np.inf
    maps[2, 3] = -np.inf
    if library == "torch":
        maps = pytest.importorskip("torch").from_numpy(maps)
    budget = "BLOCK_BYTES" if library == "numpy" else "TORCH_BLOCK_BYTES"
    monkeypatch.setattr(_xp, budget, 1 << 40)
    whole = decode(maps)
    monkeypatch.setattr(_xp, budget, 2 * 6 * 9 * 8)  # two maps per block: 11 blocks
    blocked = decode(maps)
    for a, b in zip(whole, blocked):
        assert a.shape == b.shape
        np.testing.assert_array_equal(numpy_of(a), numpy_of(b))
    coords = numpy_of(blocked.coords)
    assert np.isnan(coords[0, 1]).all() and not np.isnan(coords[0, 0]).any()


def test_torch_blocks_carry_the_gradient_of_the_one_call(monkeypatch):
    """torch's CPU blocks are joined by a differentiable concatenation: the same gradient."""
    torch = pytest.importorskip("torch")
    maps = torch.randn(4, 5, 6, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    grads = []
    for budget in (1 << 40, 2 * 6 * 9 * 8):
        monkeypatch.setattr(_xp, "TORCH_BLOCK_BYTES", budget)
        x = maps.clone().requires_grad_(True)
        (lc.decode_soft_argmax(x, logits=True).coords ** 2).sum().backward()
        grads.append(x.grad)
    assert torch.equal(grads[0], grads[1]) and grads[0].abs().sum() > 0


@given(seed=st.integers(0, 2**32 - 1), scalar=st.booleans())
def test_clip_native_equals_the_standard_clip(backend, seed, scalar):
    """NumPy's maximum-then-minimum gives xp.clip's values, NaN included, with scalar or array
    bounds."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(5, 7)) * 3
    x[rng.random(x.shape) < 0.1] = np.nan
    lo, hi = (-1.0, 2.0) if scalar else (-np.abs(rng.normal(size=(5, 1))) - 0.5, np.abs(rng.normal(size=(7,))))
    a = convert(x, backend)
    xp = array_namespace(a)
    bounds = (lo, hi) if scalar else (convert(lo, backend), convert(hi, backend))
    got = numpy_of(_xp.clip(xp, a, *bounds))
    np.testing.assert_array_equal(got, np.clip(x, lo, hi))
    # float32 stays float32, even clipped at float32's largest value (NumPy 1 would promote)
    small = convert(x.astype(np.float32), backend)
    top = float(np.finfo(np.float32).max)
    assert numpy_of(_xp.clip(xp, small, 0.0, top)).dtype == np.float32


@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=5))
def test_flip_last_native_equals_the_standard_flip(backend, shape):
    """NumPy's reversed view gives xp.flip's values along the last axis."""
    x = np.arange(float(np.prod(shape))).reshape(shape)
    a = convert(x, backend)
    xp = array_namespace(a)
    np.testing.assert_array_equal(numpy_of(_xp.flip_last(xp, a)), numpy_of(xp.flip(a, axis=-1)))
    np.testing.assert_array_equal(numpy_of(_xp.flip_last(xp, a)), x[..., ::-1])


def test_numpy_namespace_is_what_numpy_arrays_resolve_to():
    """A codec's cached decode plan takes this namespace without resolving the arrays' again."""
    assert _xp.numpy_namespace() is _xp.namespace(x=np.zeros(3, np.float32))


def test_constants_are_made_once_per_plan_on_numpy_and_every_call_elsewhere(backend):
    """A kernel's constant arrays are cached per plan on NumPy (read-only where NumPy is its own
    namespace) and built afresh on every other backend (a traced array must not outlive its call)."""
    calls = []

    def build(xp, device, n):
        calls.append(n)
        return (xp.arange(n, device=device),)

    a = convert(np.zeros(3), backend)
    xp = array_namespace(a)
    first = _xp.constants(xp, _xp.device(a), build, 4)
    again = _xp.constants(xp, _xp.device(a), build, 4)
    other = _xp.constants(xp, _xp.device(a), build, 5)
    np.testing.assert_array_equal(numpy_of(first[0]), np.arange(4))
    np.testing.assert_array_equal(numpy_of(other[0]), np.arange(5))
    if _xp.is_numpy(xp):
        assert again is first and calls == [4, 5]
        if _xp.numpy_namespace() is np:  # NumPy >= 2.1 as its own namespace: read-only
            native = _xp.constants(np, "cpu", build, 6)
            assert not native[0].flags.writeable and _xp.constants(np, "cpu", build, 6) is native
    else:
        assert calls == [4, 4, 5]


@pytest.mark.parametrize("masked", [0, 1, 3])
def test_replace_rows_equals_where(backend, masked):
    """NumPy's shortcut (no row to replace: x itself) and the general where agree."""
    rng = np.random.default_rng(masked)
    x = rng.normal(size=(5, 4))
    mask = np.zeros(5, bool)
    mask[rng.choice(5, masked, replace=False)] = True
    values = np.arange(4.0)
    xa, ma, va = convert(x, backend), convert(mask, backend), convert(values, backend)
    got = numpy_of(_xp.replace_rows(array_namespace(xa), ma, va, xa))
    np.testing.assert_array_equal(got, np.where(mask[:, None], values, x))
