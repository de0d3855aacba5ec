"""Wing, Adaptive Wing, Soft Wing and the weighted loss map: the papers' formulas, their claims
(continuity, symmetry, monotonicity, finite gradients), masks, backends and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import convert, numpy_of
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import landmark_codecs as lc

torch = pytest.importorskip("torch")

# --- slow, literal references written from the papers' formulas, one scalar at a time ----------


def ref_wing(d, omega=10.0, epsilon=2.0):
    c = omega - omega * math.log(1 + omega / epsilon)
    return omega * math.log(1 + abs(d) / epsilon) if abs(d) < omega else abs(d) - c


def ref_awing(d, y, omega=14.0, theta=0.5, epsilon=1.0, alpha=2.1):
    a = (
        omega
        * (1 / (1 + (theta / epsilon) ** (alpha - y)))
        * (alpha - y)
        * ((theta / epsilon) ** (alpha - y - 1))
        * (1 / epsilon)
    )
    c = theta * a - omega * math.log(1 + (theta / epsilon) ** (alpha - y))
    return omega * math.log(1 + (abs(d) / epsilon) ** (alpha - y)) if abs(d) < theta else a * abs(d) - c


def ref_soft_wing(d, omega1=2.0, omega2=20.0, epsilon=0.5):
    b = omega1 - omega2 * math.log(1 + omega1 / epsilon)
    return abs(d) if abs(d) < omega1 else omega2 * math.log(1 + abs(d) / epsilon) + b


def elementwise(ref, pred, target, **kw):
    return np.vectorize(lambda p, t: ref(p - t, **kw))(pred, target)


def ref_awing_elementwise(pred, target, **kw):
    return np.vectorize(lambda p, t: ref_awing(p - t, min(max(t, 0.0), 1.0), **kw))(pred, target)


def ref_weighted_loss_map(target, threshold=0.2, foreground_weight=10.0, kernel_size=3):
    from scipy.ndimage import maximum_filter

    size = (1,) * (target.ndim - 2) + (kernel_size, kernel_size)
    # mode="nearest" repeats the border pixel, which is already in every window that crosses it:
    # the same as a window clipped at the border.
    return foreground_weight * (maximum_filter(target, size=size, mode="nearest") > threshold) + 1.0


# --- strategies ---------------------------------------------------------------------------

positive = st.floats(0.01, 100.0)
awing_params = st.fixed_dictionaries(
    {
        "omega": st.floats(0.5, 50.0),
        "theta": st.floats(0.01, 2.0),
        "epsilon": st.floats(0.05, 5.0),
        "alpha": st.floats(2.0, 4.0),
    }
).filter(lambda p: p["theta"] < p["omega"])
wing_params = st.fixed_dictionaries({"omega": positive, "epsilon": positive})
soft_params = st.fixed_dictionaries({"omega1": positive, "omega2": positive, "epsilon": positive})
unit = st.floats(0.0, 1.0)
errors = st.one_of(st.just(0.0), st.floats(-1e6, 1e6), st.floats(-3.0, 3.0))


def value(fn, d, y=0.0, **kw):
    """The elementwise loss of one error ``d`` at target ``y``, in float64."""
    return float(fn(np.array([y + d]), np.array([y]), reduction="sum", **kw))


def slope(fn, d, y=0.0, **kw):
    """d loss / d pred at error ``d`` (autograd, float64): the derivative of the branch ``d`` is in."""
    p = torch.tensor([y + d], dtype=torch.float64, requires_grad=True)
    fn(p, torch.tensor([y], dtype=torch.float64), reduction="sum", **kw).backward()
    return float(p.grad[0])


# --- the formulas -------------------------------------------------------------------------


def test_adaptive_wing_known_value():
    """The issue's independent value: default parameters, pred 1, target 0, 12 elements."""
    loss = lc.adaptive_wing_loss(np.ones((1, 1, 3, 4)), np.zeros((1, 1, 3, 4)))
    assert abs(float(loss) - 8.49595) < 5e-6


def test_known_values_at_the_breakpoints():
    assert value(lc.wing_loss, 10.0) == pytest.approx(10 * math.log(6), rel=1e-14)
    assert value(lc.wing_loss, -1.0) == pytest.approx(10 * math.log(1.5), rel=1e-14)
    assert value(lc.soft_wing_loss, 2.0) == pytest.approx(2.0, rel=1e-14)
    assert value(lc.soft_wing_loss, 1.0) == 1.0
    # AWing at |d| = theta on background (y = 0): omega * ln(1 + (theta/epsilon)^alpha).
    assert value(lc.adaptive_wing_loss, 0.5) == pytest.approx(14 * math.log(1 + 0.5**2.1), rel=1e-14)
    # Foreground pixel predicted exactly: zero.
    assert value(lc.adaptive_wing_loss, 0.0, y=1.0) == 0.0


@given(
    pred=hnp.arrays(np.float64, st.integers(1, 30), elements=st.floats(-20, 20)),
    seed=st.integers(0, 2**32 - 1),
    wp=wing_params,
    ap=awing_params,
    sp=soft_params,
)
def test_agrees_with_the_literal_references(pred, seed, wp, ap, sp):
    target = np.random.default_rng(seed).uniform(-0.2, 1.2, pred.shape)  # out-of-range y on purpose
    for fn, ref, kw in (
        (lc.wing_loss, lambda p, t, **k: elementwise(ref_wing, p, t, **k), wp),
        (lc.adaptive_wing_loss, ref_awing_elementwise, ap),
        (lc.soft_wing_loss, lambda p, t, **k: elementwise(ref_soft_wing, p, t, **k), sp),
    ):
        want = ref(pred, target, **kw)
        got = fn(pred, target, reduction="none", **kw)
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11 * max(kw.values()), err_msg=fn.__name__)
        assert float(fn(pred, target, **kw)) == pytest.approx(want.mean(), rel=1e-11, abs=1e-11)
        assert float(fn(pred, target, reduction="sum", **kw)) == pytest.approx(want.sum(), rel=1e-11, abs=1e-11)


def test_the_widespread_omega_for_epsilon_slip_is_caught():
    """A re-implementation with ln(1 + (|d|/omega)^p) in the small branch differs from ours."""
    d, y = 0.3, 0.2
    slip = 14 * math.log(1 + (d / 14) ** (2.1 - y))
    assert value(lc.adaptive_wing_loss, d, y=y) == pytest.approx(ref_awing(d, y), rel=1e-13)
    assert abs(value(lc.adaptive_wing_loss, d, y=y) - slip) > 0.1


# --- continuity at the breakpoints, over the hyperparameters --------------------------------


@given(ap=awing_params, y=unit)
def test_adaptive_wing_value_and_slope_continuous_at_theta(ap, y):
    theta = ap["theta"]
    below = theta * (1 - 1e-12)
    assert value(lc.adaptive_wing_loss, below, y=y, **ap) == pytest.approx(
        value(lc.adaptive_wing_loss, theta, y=y, **ap), rel=1e-9
    )
    left, right = slope(lc.adaptive_wing_loss, below, y=y, **ap), slope(lc.adaptive_wing_loss, theta, y=y, **ap)
    assert right > 0
    assert left == pytest.approx(right, rel=1e-8)


@given(wp=wing_params)
def test_wing_value_continuous_at_omega_and_its_slope_jump_is_the_papers(wp):
    omega, epsilon = wp["omega"], wp["epsilon"]
    below = omega * (1 - 1e-12)
    assert value(lc.wing_loss, below, **wp) == pytest.approx(value(lc.wing_loss, omega, **wp), rel=1e-9)
    assert slope(lc.wing_loss, below, **wp) == pytest.approx(omega / (omega + epsilon), rel=1e-9)
    assert slope(lc.wing_loss, omega, **wp) == pytest.approx(1.0, rel=1e-12)


@given(sp=soft_params)
def test_soft_wing_value_continuous_slope_jumps_by_omega2_over_omega1_plus_epsilon(sp):
    w1, w2, eps = sp["omega1"], sp["omega2"], sp["epsilon"]
    below = w1 * (1 - 1e-12)
    assert value(lc.soft_wing_loss, below, **sp) == pytest.approx(value(lc.soft_wing_loss, w1, **sp), rel=1e-9)
    assert slope(lc.soft_wing_loss, below, **sp) == 1.0
    assert slope(lc.soft_wing_loss, w1, **sp) == pytest.approx(w2 / (w1 + eps), rel=1e-12)


@given(w1=positive, eps=positive)
def test_soft_wing_slope_continuous_exactly_when_omega2_is_omega1_plus_epsilon(w1, eps):
    kw = {"omega1": w1, "omega2": w1 + eps, "epsilon": eps}
    assert slope(lc.soft_wing_loss, w1 * (1 - 1e-12), **kw) == pytest.approx(
        slope(lc.soft_wing_loss, w1, **kw), rel=1e-12
    )


def test_soft_wing_default_slope_jump_is_eightfold():
    assert slope(lc.soft_wing_loss, 2.0) == pytest.approx(8.0, rel=1e-12)


# --- symmetry, monotonicity, zero at zero ---------------------------------------------------

LOSSES = {
    "wing": (lc.wing_loss, wing_params),
    "adaptive_wing": (lc.adaptive_wing_loss, awing_params),
    "soft_wing": (lc.soft_wing_loss, soft_params),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
@given(data=st.data(), y=unit, mags=st.lists(st.floats(0.0, 1e4), min_size=2, max_size=40))
def test_symmetric_monotone_and_zero_at_zero(name, data, y, mags):
    fn, params = LOSSES[name]
    kw = data.draw(params)
    e = np.array(sorted(mags))
    target = np.full(e.shape, y)
    up = fn(target + e, target, reduction="none", **kw)
    down = fn(target - e, target, reduction="none", **kw)
    # The error is formed as pred - target; rounding there is the only asymmetry.
    np.testing.assert_allclose(up, down, rtol=1e-9, atol=1e-12)
    exact = fn(np.array(sorted(-e)), np.zeros(e.shape), reduction="none", **kw)[::-1]
    np.testing.assert_array_equal(fn(e, np.zeros(e.shape), reduction="none", **kw), exact)
    assert np.all(np.diff(fn(e, np.zeros(e.shape), reduction="none", **kw)) >= 0), "not monotone in |error|"
    assert float(fn(target, target, reduction="sum", **kw)) == 0.0


# --- gradients ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@given(data=st.data(), y=hnp.arrays(np.float64, 8, elements=unit), e=hnp.arrays(np.float64, 8, elements=errors))
def test_gradients_finite_for_any_error_and_targets_in_unit_interval(name, dtype, data, y, e):
    fn, params = LOSSES[name]
    kw = data.draw(params)
    # Errors exactly at 0 and at each breakpoint are included every time.
    breaks = [kw.get("theta", kw.get("omega", kw.get("omega1")))]
    e = np.concatenate([e, [0.0, -0.0], breaks, [-b for b in breaks]])
    y = np.resize(y, e.shape)
    target = torch.tensor(y, dtype=dtype, requires_grad=True)
    pred = (torch.tensor(y, dtype=dtype) + torch.tensor(e, dtype=dtype)).requires_grad_()
    loss = fn(pred, target, **kw)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(pred.grad).all() and torch.isfinite(target.grad).all()


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradcheck_float64(name):
    fn, _ = LOSSES[name]
    rng = np.random.default_rng(1)
    y = rng.uniform(0.05, 0.95, (2, 3, 4))
    # Errors away from the kinks (|d| = 0 for Wing/Soft Wing) and the breakpoints, where
    # one-sided finite differences are not the derivative.
    mag = rng.uniform(0.05, 0.4, y.shape) + np.array([0.0, 0.65, 2.2, 11.0])[rng.integers(0, 4, y.shape)]
    e = mag * rng.choice([-1.0, 1.0], y.shape)
    pred = torch.tensor(y + e, requires_grad=True)
    target = torch.tensor(y, requires_grad=True)
    mask = torch.tensor(rng.integers(0, 2, (2, 3)), dtype=torch.float64)
    weight = torch.tensor(rng.uniform(1, 11, y.shape))
    extra = {"loss_map": weight} if name == "adaptive_wing" else {}
    for reduction in ("mean", "sum", "none"):
        assert torch.autograd.gradcheck(
            lambda p, t, r=reduction: fn(p, t, weights=mask, reduction=r, **extra), (pred, target)
        )


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_is_finite_and_rounded_once(name, dtype):
    """Computed in float32: the result is the float64 loss of the same (rounded) inputs, rounded once."""
    fn, _ = LOSSES[name]
    dt = getattr(torch, dtype)
    rng = np.random.default_rng(2)
    target = torch.tensor(rng.random((4, 98, 16, 16)), dtype=dt)
    pred = (target.double() + torch.tensor(rng.normal(0, 3, target.shape))).to(dt).requires_grad_()
    loss = fn(pred, target)
    loss.backward()
    assert loss.dtype == dt and pred.grad.dtype == dt
    assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()
    want = float(fn(pred.detach().double(), target.double()))
    assert float(loss.detach()) == pytest.approx(want, rel=2.0 ** -(8 if dtype == "bfloat16" else 11))
    none = fn(pred.detach(), target, reduction="none")
    np.testing.assert_allclose(
        none.double().numpy(),
        fn(pred.detach().double(), target.double(), reduction="none").numpy(),
        rtol=2.0 ** -(8 if dtype == "bfloat16" else 11),
        atol=1e-7,
    )


def test_float16_numpy_mean_does_not_overflow():
    pred = np.full((64, 98, 16, 16), 30.0, dtype=np.float16)
    loss = lc.wing_loss(pred, np.zeros_like(pred))
    assert loss.dtype == np.float16 and np.isfinite(loss)
    assert float(loss) == pytest.approx(ref_wing(30.0), rel=2**-11)


# --- masks and reductions -------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_mask_per_landmark_broadcasts_over_maps_and_coordinates(name):
    fn, _ = LOSSES[name]
    rng = np.random.default_rng(3)
    mask = rng.integers(0, 2, (2, 5)).astype(np.float64)
    mask[0, 0] = 0.5  # a soft weight, not only 0/1
    for shape in ((2, 5, 4, 3), (2, 5, 2)):
        pred, target = rng.normal(0, 2, shape), rng.random(shape)
        full = np.broadcast_to(mask.reshape(mask.shape + (1,) * (len(shape) - 2)), shape)
        each = fn(pred, target, reduction="none")
        np.testing.assert_allclose(fn(pred, target, weights=mask, reduction="none"), each * full, rtol=1e-14)
        np.testing.assert_allclose(fn(pred, target, weights=full, reduction="none"), each * full, rtol=1e-14)
        assert float(fn(pred, target, weights=mask, reduction="sum")) == pytest.approx((each * full).sum(), rel=1e-13)
        assert float(fn(pred, target, weights=mask)) == pytest.approx((each * full).sum() / full.sum(), rel=1e-13)
        assert float(fn(pred, target, weights=mask.astype(bool))) == pytest.approx(
            each[mask.astype(bool)].mean(), rel=1e-13
        )
        assert float(fn(pred, target, weights=np.ones(shape[:1]))) == pytest.approx(each.mean(), rel=1e-13)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_all_zero_mask_and_empty_input_give_zero_with_finite_gradients(name, backend):
    fn, _ = LOSSES[name]
    pred = convert(np.random.default_rng(4).normal(size=(2, 3, 4, 4)), backend)
    target = convert(np.zeros((2, 3, 4, 4)), backend)
    assert float(numpy_of(fn(pred, target, weights=convert(np.zeros((2, 3)), backend)))) == 0.0
    empty = convert(np.zeros((0, 3, 4, 4)), backend)
    assert float(numpy_of(fn(empty, empty))) == 0.0
    assert float(numpy_of(fn(empty, empty, weights=convert(np.zeros((0, 3)), backend)))) == 0.0
    p = torch.tensor(numpy_of(pred), requires_grad=True)
    fn(p, torch.zeros(2, 3, 4, 4), weights=torch.zeros(2, 3)).backward()
    assert torch.equal(p.grad, torch.zeros_like(p))


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_masked_out_nan_targets_do_not_leak(name):
    """A missing landmark carries NaN coordinates; masked out, it changes neither loss nor gradient."""
    fn, _ = LOSSES[name]
    rng = np.random.default_rng(5)
    target = torch.tensor(rng.random((3, 4, 2)))
    pred = torch.tensor(rng.normal(size=(3, 4, 2)), requires_grad=True)
    mask = torch.ones(3, 4)
    mask[1, 2] = 0
    clean = fn(pred, target, weights=mask)
    (g_clean,) = torch.autograd.grad(clean, pred)
    target_nan = target.clone()
    target_nan[1, 2] = float("nan")
    dirty = fn(pred, target_nan, weights=mask)
    (g_dirty,) = torch.autograd.grad(dirty, pred)
    assert torch.equal(clean, dirty) and torch.equal(g_clean, g_dirty)
    assert g_dirty[1, 2].abs().sum() == 0


def test_weight_multiplies_but_does_not_normalize():
    rng = np.random.default_rng(6)
    pred, target = rng.random((2, 3, 5, 5)), rng.random((2, 3, 5, 5))
    w = rng.uniform(1, 11, pred.shape)
    each = lc.adaptive_wing_loss(pred, target, reduction="none")
    np.testing.assert_allclose(lc.adaptive_wing_loss(pred, target, loss_map=w, reduction="none"), each * w, rtol=1e-14)
    assert float(lc.adaptive_wing_loss(pred, target, loss_map=w)) == pytest.approx((each * w).mean(), rel=1e-13)
    per_landmark = rng.uniform(0, 2, (2, 3))
    np.testing.assert_allclose(
        lc.adaptive_wing_loss(pred, target, loss_map=per_landmark, reduction="none"),
        each * per_landmark[..., None, None],
        rtol=1e-14,
    )


def test_adaptive_wing_targets_outside_unit_interval_use_the_clipped_exponent():
    """Defined behaviour: the exponent uses clip(y, 0, 1), the error uses y as given."""
    target = np.array([-0.3, 1.4, 1.0 + 1e-7, 2.0])
    pred = target + np.array([0.2, -0.1, 0.0, 3.0])
    got = lc.adaptive_wing_loss(pred, target, reduction="none")
    want = [ref_awing(p - t, min(max(t, 0.0), 1.0)) for p, t in zip(pred, target)]
    np.testing.assert_allclose(got, want, rtol=1e-13)
    p = torch.tensor(target, requires_grad=True)  # zero error at y > 1: the slope stays finite
    lc.adaptive_wing_loss(p, torch.tensor(target)).backward()
    assert torch.isfinite(p.grad).all()


# --- the weighted loss map ------------------------------------------------------------------


@given(
    target=hnp.arrays(
        np.float64, st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9)), elements=st.floats(0, 1)
    ),
    kernel_size=st.sampled_from([1, 3, 5, 7]),
    threshold=st.floats(-0.5, 1.0),
    weight=st.floats(0, 20),
)
def test_weighted_loss_map_equals_grey_dilation_oracle(backend, target, kernel_size, threshold, weight):
    want = ref_weighted_loss_map(target, threshold, weight, kernel_size)
    t = convert(target, backend)
    got = lc.weighted_loss_map(t, threshold=threshold, foreground_weight=weight, kernel_size=kernel_size)
    np.testing.assert_allclose(numpy_of(got), want, rtol=1e-15)
    assert got.dtype == t.dtype and str(getattr(got, "device", "cpu")) == str(getattr(t, "device", "cpu"))
    np.testing.assert_array_equal(numpy_of(t), target)


def test_weighted_loss_map_of_a_gaussian_target():
    target, _ = lc.encode_gaussian(np.array([[5.0, 4.0]]), heatmap_size=(12, 10), sigma=1.5)
    m = lc.weighted_loss_map(target)
    assert m.shape == target.shape and set(np.unique(m)) == {1.0, 11.0}
    assert m[0, 4, 5] == 11.0 and m[0, 0, 0] == 1.0
    np.testing.assert_array_equal(m, ref_weighted_loss_map(target))


def test_weighted_loss_map_carries_no_gradient():
    target = torch.rand(2, 3, 6, 6, requires_grad=True)
    assert not lc.weighted_loss_map(target).requires_grad


# --- backends and the torch modules ---------------------------------------------------------

CASES = {
    "wing": lambda p, t, m, w: lc.wing_loss(p, t, omega=0.8, epsilon=0.3, weights=m),
    "wing_none": lambda p, t, m, w: lc.wing_loss(p, t, reduction="none"),
    "adaptive_wing": lambda p, t, m, w: lc.adaptive_wing_loss(p, t, loss_map=w, weights=m),
    "adaptive_wing_sum": lambda p, t, m, w: lc.adaptive_wing_loss(p, t, reduction="sum"),
    "soft_wing": lambda p, t, m, w: lc.soft_wing_loss(
        p, t, omega1=0.2, omega2=1.0, epsilon=0.1, weights=m, reduction="none"
    ),
    "weighted_loss_map": lambda p, t, m, w: lc.weighted_loss_map(t),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backends_agree_keep_dtype_device_and_inputs(backend, name, dtype):
    rng = np.random.default_rng(7)
    t, _ = lc.encode_gaussian(rng.uniform(0, 9, (2, 4, 2)), heatmap_size=(10, 8), sigma=1.0)
    args = [
        (t + rng.normal(0, 0.3, t.shape)).astype(dtype),
        t.astype(dtype),
        rng.integers(0, 2, (2, 4)).astype(dtype),
        lc.weighted_loss_map(t).astype(dtype),
    ]
    want = numpy_of(CASES[name](*[a.copy() for a in args]))
    inputs = [convert(a, backend) for a in args]
    got = CASES[name](*inputs)
    g = numpy_of(got)
    assert g.shape == want.shape and g.dtype == dtype
    np.testing.assert_allclose(g, want, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert str(getattr(got, "device", "cpu")) == str(getattr(inputs[0], "device", "cpu"))
    for i, a in zip(inputs, args):
        np.testing.assert_array_equal(numpy_of(i), a)


def test_modules_equal_functions():
    from landmark_codecs import torch as lct

    rng = np.random.default_rng(8)
    target = torch.tensor(lc.encode_gaussian(rng.uniform(0, 15, (2, 5, 2)), heatmap_size=(16, 16), sigma=1.5)[0])
    pred = target + torch.tensor(rng.normal(0, 0.2, tuple(target.shape)))
    mask = torch.tensor(rng.integers(0, 2, (2, 5)), dtype=torch.float64)
    kw = {"omega": 3.0, "epsilon": 0.5, "reduction": "sum"}
    assert torch.equal(lct.WingLoss(**kw)(pred, target, mask), lc.wing_loss(pred, target, weights=mask, **kw))
    kw = {"omega1": 0.1, "omega2": 2.0, "epsilon": 0.2, "reduction": "none"}
    assert torch.equal(lct.SoftWingLoss(**kw)(pred, target, mask), lc.soft_wing_loss(pred, target, weights=mask, **kw))
    kw = {"omega": 12.0, "theta": 0.4, "epsilon": 1.5, "alpha": 2.2, "reduction": "mean"}
    assert torch.equal(
        lct.AdaptiveWingLoss(**kw)(pred, target, mask), lc.adaptive_wing_loss(pred, target, weights=mask, **kw)
    )
    w = torch.rand(2, 5, 1, 1, dtype=torch.float64)
    with_map = lct.AdaptiveWingLoss(
        weighted_loss_map=True, map_threshold=0.3, map_foreground_weight=5.0, map_kernel_size=5, **kw
    )
    loss_map = lc.weighted_loss_map(target, threshold=0.3, foreground_weight=5.0, kernel_size=5)
    assert torch.equal(
        with_map(pred, target, mask, w), lc.adaptive_wing_loss(pred, target, weights=mask, loss_map=loss_map * w, **kw)
    )
    assert torch.equal(with_map(pred, target), lc.adaptive_wing_loss(pred, target, loss_map=loss_map, **kw))
    assert "weighted_loss_map=True" in repr(with_map)


def test_modules_validate_at_construction():
    from landmark_codecs import torch as lct

    with pytest.raises(ValueError, match="omega must be positive"):
        lct.WingLoss(omega=0.0)
    with pytest.raises(ValueError, match="theta must be smaller than omega"):
        lct.AdaptiveWingLoss(theta=20.0)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        lct.AdaptiveWingLoss(weighted_loss_map=True, map_kernel_size=4)
    with pytest.raises(ValueError, match="reduction must be one of"):
        lct.SoftWingLoss(reduction="avg")


# --- bad input ------------------------------------------------------------------------------

P = np.zeros((2, 3, 4, 4))


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: lc.wing_loss(P, np.zeros((2, 3, 4, 5))),
            ValueError,
            r"target must broadcast to shape \(2, 3, 4, 4\).*got shape \(2, 3, 4, 5\)",
        ),
        (lambda: lc.wing_loss(P[0], P), ValueError, r"target must broadcast to shape \(3, 4, 4\)"),
        (
            lambda: lc.wing_loss(P, P, weights=np.ones((3,))),
            ValueError,
            r"weights must have pred's shape .* got shape \(3,\)",
        ),
        (lambda: lc.wing_loss(P, P, weights=np.ones((2, 3, 4, 4, 1))), ValueError, r"weights must have pred's shape"),
        (
            lambda: lc.adaptive_wing_loss(P, P, loss_map=np.ones((2, 4))),
            ValueError,
            r"loss_map must have pred's shape .* got shape \(2, 4\)",
        ),
        (lambda: lc.wing_loss(P.astype(int), P), TypeError, "pred must have a real floating dtype"),
        (lambda: lc.adaptive_wing_loss(P, P.astype(np.int32)), TypeError, "target must have a real floating dtype"),
        (
            lambda: lc.wing_loss(P, P, weights=np.ones((2, 3), dtype=complex)),
            TypeError,
            "weights must be a boolean, integer or real floating",
        ),
        (lambda: lc.wing_loss(P, P, omega=0.0), ValueError, "omega must be positive"),
        (lambda: lc.wing_loss(P, P, epsilon=-1.0), ValueError, "epsilon must be positive"),
        (lambda: lc.wing_loss(P, P, omega=float("nan")), ValueError, "omega must be positive and finite"),
        (lambda: lc.wing_loss(P, P, omega="10"), TypeError, "omega must be a positive Python number"),
        (lambda: lc.adaptive_wing_loss(P, P, theta=0.0), ValueError, "theta must be positive"),
        (lambda: lc.adaptive_wing_loss(P, P, theta=14.0), ValueError, "theta must be smaller than omega"),
        (lambda: lc.adaptive_wing_loss(P, P, alpha=1.5), ValueError, r"alpha must be >= 2.0"),
        (lambda: lc.soft_wing_loss(P, P, omega2=0), ValueError, "omega2 must be positive"),
        (
            lambda: lc.soft_wing_loss(P, P, reduction="avg"),
            ValueError,
            "reduction must be one of 'mean', 'sum', 'none'",
        ),
        (lambda: lc.weighted_loss_map(np.zeros(4)), ValueError, r"target must have shape \(..., H, W\)"),
        (lambda: lc.weighted_loss_map(P.astype(int)), TypeError, "target must have a real floating dtype"),
        (lambda: lc.weighted_loss_map(P, kernel_size=2), ValueError, "kernel_size must be odd"),
        (lambda: lc.weighted_loss_map(P, kernel_size=0), ValueError, "kernel_size must be a positive int"),
        (lambda: lc.weighted_loss_map(P, foreground_weight=-1.0), ValueError, "foreground_weight must be >= 0.0"),
        (lambda: lc.weighted_loss_map(P, threshold=float("inf")), ValueError, "threshold must be finite"),
        (lambda: lc.wing_loss(P, torch.zeros(2, 3, 4, 4)), TypeError, "all arrays must come from one array library"),
        (lambda: lc.wing_loss([0.0], [0.0]), TypeError, "pred must be an array"),
    ],
)
def test_bad_input_names_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


# --- the fused torch gradient equals autograd through the formula ---------------------------


def _uses_fused(t) -> bool:
    seen, todo = set(), [t.grad_fn]
    while todo:
        f = todo.pop()
        if f is None or f in seen:
            continue
        seen.add(f)
        if "Fused" in type(f).__name__:
            return True
        todo.extend(g for g, _ in f.next_functions)
    return False


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@given(
    data=st.data(),
    y=hnp.arrays(np.float64, 12, elements=st.floats(-0.2, 1.2)),
    e=hnp.arrays(np.float64, 12, elements=errors),
)
def test_fused_gradient_equals_autograd_through_the_formula(name, dtype, data, y, e):
    """Only pred requiring a gradient selects the fused path; target requiring one selects autograd."""
    fn, params = LOSSES[name]
    kw = data.draw(params)
    b = kw.get("theta", kw.get("omega", kw.get("omega1")))
    e = np.concatenate([e, [0.0, b, -b, b * (1 - 1e-7)]])
    y = np.resize(y, e.shape)
    target = torch.tensor(y, dtype=dtype)
    pred = torch.tensor(y + e, dtype=dtype)
    mask = torch.tensor(np.resize([1.0, 0.0, 0.5], e.shape), dtype=dtype)
    fused_pred = pred.clone().requires_grad_()
    fused = fn(fused_pred, target, weights=mask, reduction="none", **kw)
    assert torch.equal(target, torch.tensor(y, dtype=dtype)) and torch.equal(
        fused_pred.detach(), pred
    )  # in-place work stays internal
    assert _uses_fused(fused)
    plain_pred, plain_target = pred.clone().requires_grad_(), target.clone().requires_grad_()
    plain = fn(plain_pred, plain_target, weights=mask, reduction="none", **kw)
    assert not _uses_fused(plain)
    tol = 1e-6 if dtype == torch.float32 else 1e-13
    np.testing.assert_allclose(fused.detach().numpy(), plain.detach().numpy(), rtol=tol, atol=tol)
    g = torch.tensor(np.resize([1.0, -2.0, 0.25], e.shape), dtype=dtype)
    fused.backward(g)
    plain.backward(g)
    np.testing.assert_allclose(fused_pred.grad.numpy(), plain_pred.grad.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradcheck_float64_fused_path(name):
    fn, _ = LOSSES[name]
    rng = np.random.default_rng(9)
    y = torch.tensor(rng.uniform(0.05, 0.95, (2, 3, 4)))
    mag = rng.uniform(0.05, 0.4, y.shape) + np.array([0.0, 0.65, 2.2, 11.0])[rng.integers(0, 4, y.shape)]
    pred = (y + torch.tensor(mag * rng.choice([-1.0, 1.0], y.shape))).requires_grad_()
    weight = {"loss_map": torch.tensor(rng.uniform(1, 11, y.shape))} if name == "adaptive_wing" else {}
    assert _uses_fused(fn(pred, y, reduction="none"))
    for reduction in ("mean", "sum", "none"):
        assert torch.autograd.gradcheck(lambda p, r=reduction: fn(p, y, reduction=r, **weight), (pred,))


@pytest.mark.slow
def test_torch_compile_fullgraph_from_a_fresh_interpreter():
    """No graph break, also when the first call of the process is the compiled one."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import torch, landmark_codecs as lc
        def f(p, t, m):
            awing = lc.adaptive_wing_loss(p, t, loss_map=lc.weighted_loss_map(t), weights=m)
            return awing + lc.wing_loss(p, t, weights=m) + lc.soft_wing_loss(p, t, reduction="sum")
        p, t, m = torch.rand(2, 3, 8, 8, requires_grad=True), torch.rand(2, 3, 8, 8), torch.ones(2, 3)
        compiled = torch.compile(f, fullgraph=True, backend="aot_eager")(p, t, m)
        (g,) = torch.autograd.grad(compiled, p)
        eager = f(p, t, m)
        (g_eager,) = torch.autograd.grad(eager, p)
        assert torch.allclose(compiled, eager) and torch.allclose(g, g_eager)
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_nan_prediction_is_not_hidden(name):
    """An unmasked NaN prediction makes its element, and the mean, NaN (the capped branches must not absorb it)."""
    fn, _ = LOSSES[name]
    pred = np.array([0.3, np.nan, 50.0])
    each = fn(pred, np.zeros(3), reduction="none")
    assert np.isnan(each[1]) and np.isfinite(each[[0, 2]]).all()
    assert np.isnan(fn(pred, np.zeros(3)))
    p = torch.tensor(pred, requires_grad=True)
    assert torch.isnan(fn(p, torch.zeros(3), reduction="none")[1])


def test_fused_path_refuses_double_backward_with_a_clear_error():
    """Documented: the fused gradient is differentiable once; a target requiring grad selects autograd, which is twice."""
    pred = torch.rand(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    target = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    (g,) = torch.autograd.grad(lc.adaptive_wing_loss(pred, target), pred, create_graph=True)
    assert not g.requires_grad  # create_graph=True builds no graph through the fused gradient
    with pytest.raises(RuntimeError, match="does not require grad"):
        torch.autograd.grad(g.sum(), pred)
    target.requires_grad_()
    (g,) = torch.autograd.grad(lc.adaptive_wing_loss(pred, target), pred, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), pred)
    assert torch.isfinite(gg).all()
