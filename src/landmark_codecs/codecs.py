"""Codec objects: an encoder and its decoder as one named object, in image pixels.

``get_codec(name, image_size=..., heatmap_size=..., **options)`` returns a frozen, picklable
:class:`Codec`; :func:`codec_names` lists the names. A codec only calls the family's functions:

- ``codec.encode(keypoints, /, *, weights=None, rng=None)`` takes ``(..., K, 2)`` keypoints in
  **image pixels** (the network input's, integers at pixel centres) and returns
  :class:`EncodedTargets` ``(outputs, weights, targets)``: ``outputs`` is the tuple of arrays the
  network predicts, in the order :meth:`Codec.decode` reads them (one map stack; SimCC's x and y
  labels; PIPNet's scores, offsets and neighbour offsets), ``weights`` is ``(..., K)`` and
  ``targets`` the family function's own result (what its loss takes, e.g. :func:`pipnet_loss`).
- ``codec.decode(*outputs)`` returns :class:`~landmark_codecs.DecodedLandmarks`
  ``(coords, scores)`` with ``coords`` in image pixels.

Decoding an encoder's own outputs gives the keypoints back: to float rounding for ``dark``,
``udp``, ``simcc``, ``soft_argmax``, ``pipnet`` and ``h3r`` with ``expected=True``; within half
a heatmap pixel per axis for ``argmax`` and ``quarter`` (the rounded target), and within one
heatmap pixel per axis for ``h3r``'s sampled target (whose mean is the keypoint: unbiased).

Convention:
    Keypoints and decoded coordinates are ``(x, y)`` in image pixels of ``image_size``
    ``(W, H)``, integers at pixel centres; the image's valid range is ``[-0.5, W - 0.5) x
    [-0.5, H - 0.5)``. The codec converts to its heatmap with ``convention`` (default
    ``"pixel_center"``, see :mod:`landmark_codecs.coords`); UDP always uses its corner-aligned
    one. A keypoint that is NaN or outside the image, or of weight <= 0 or NaN, gets weight 0
    and never breaks a batch (under ``"legacy"`` also one inside the image beyond the heatmap's far edge, which that
    convention puts outside the map).

Keypoints outside the image: when more than half of the finite keypoints of weight > 0 in
one ``encode`` call lie outside the image, the keypoints are almost surely in the wrong unit
(heatmap pixels, a larger original image, normalized ``[0, 1]`` is not caught): ``on_outside``
decides what happens, ``"warn"`` (a :class:`LandmarksOutsideWarning`, the default), ``"raise"``
(a ``ValueError``) or ``"ignore"``. The check reads one count back to the host per call.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar, Literal, NamedTuple, cast

import numpy as np

from . import (
    _common,
    _xp,
    argmax,
    coords,
    dark,
    gaussian,
    locref,
    pipnet,
    regression,
    rounding,
    simcc,
    soft_argmax,
    udp,
)
from . import _validation as check
from ._common import DecodedLandmarks
from ._xp import Array
from .layouts import MEAN_SHAPES
from .layouts import mean_shape as _mean_shape

OnOutside = Literal["warn", "raise", "ignore"]

__all__ = [
    "ArgmaxCodec",
    "Codec",
    "DarkCodec",
    "EncodedTargets",
    "H3RCodec",
    "LandmarksOutsideWarning",
    "LocRefCodec",
    "LocalSoftArgmaxCodec",
    "MegviiCodec",
    "PIPNetCodec",
    "QuarterCodec",
    "RegressionCodec",
    "SimCCCodec",
    "SoftArgmaxCodec",
    "UDPCodec",
    "UDPCombinedCodec",
    "codec_names",
    "codec_options",
    "get_codec",
]


class EncodedTargets(NamedTuple):
    """What :meth:`Codec.encode` returns."""

    outputs: tuple[Array, ...]
    """The arrays the network predicts, in the order :meth:`Codec.decode` reads them."""
    weights: Array
    """``(..., K)`` per-landmark weights (0: weight <= 0 or NaN given, NaN keypoint, outside the image or the map)."""
    targets: Any
    """The family function's own result (``HeatmapTargets``, ``SimCCTargets``, ``PIPNetTargets``)."""


class LandmarksOutsideWarning(UserWarning):
    """Most keypoints given to :meth:`Codec.encode` lie outside the image: probably a unit mistake."""


_REGISTRY: dict[str, type[Codec]] = {}

# Signatures a codec remembers as checked (a bound on its memory; more are checked each call).
_PLANS = 64


def _register(cls: type[Codec]) -> type[Codec]:
    _REGISTRY[cls.name] = cls
    return cls


def codec_names() -> tuple[str, ...]:
    """The names :func:`get_codec` accepts, in registration order.

    >>> codec_names()
    ('argmax', 'quarter', 'dark', 'udp', 'udp_combined', 'megvii', 'simcc', 'h3r', 'soft_argmax', 'regression', 'pipnet', 'local_soft_argmax', 'locref')
    """
    return tuple(_REGISTRY)


def codec_options(name: str, /) -> tuple[str, ...]:
    """The options :func:`get_codec` accepts for ``name`` (beyond the sizes), in order.

    >>> codec_options("dark")
    ('on_outside', 'convention', 'sigma', 'iterations', 'kernel_size')
    """
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"unknown codec {name!r}; choose from {', '.join(_REGISTRY)}")
    return tuple(
        f.name for f in dataclasses.fields(_REGISTRY[name]) if f.init and f.name not in ("image_size", "heatmap_size")
    )


def get_codec(
    name: str, /, *, image_size: Sequence[int], heatmap_size: Sequence[int] | None = None, **options: Any
) -> Codec:
    """The codec ``name`` for ``image_size`` ``(W, H)`` images and ``heatmap_size`` ``(W, H)`` maps.

    ``heatmap_size`` is the score grid for ``"pipnet"``; ``"simcc"`` takes none (its bins are
    ``image_size * split_ratio``) or the matching bin counts. ``options`` are the codec's fields
    (see each class); they are checked here, with the family function's own messages.

    >>> import numpy as np
    >>> codec = get_codec("dark", image_size=(256, 256), heatmap_size=(64, 64), sigma=2.0)
    >>> encoded = codec.encode(np.array([[[100.3, 57.8]]]))
    >>> [round(v, 6) for v in codec.decode(*encoded.outputs).coords[0, 0].tolist()]
    [100.3, 57.8]
    """
    fields = codec_options(name)
    cls = _REGISTRY[name]
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise TypeError(f"codec {name!r} has no option(s) {', '.join(unknown)}; its options are {', '.join(fields)}")
    # the sizes are checked (and made tuples) by the codec's __post_init__, with the argument's name
    return cls(image_size=cast(Any, image_size), heatmap_size=cast(Any, heatmap_size), **options)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Codec:
    """Base class: ``encode`` image-pixel keypoints into network outputs, ``decode`` them back.

    Subclasses set ``name`` and ``output_names`` and implement ``_encode`` (heatmap-space
    keypoints or image ones, per family) and ``_decode``. Instances are frozen and picklable.
    """

    name: ClassVar[str] = ""
    output_names: ClassVar[tuple[str, ...]] = ()
    has_heatmap: ClassVar[bool] = True
    image_size: tuple[int, int]
    heatmap_size: tuple[int, int] | None = None
    on_outside: OnOutside = "warn"

    def __post_init__(self) -> None:
        self._set("image_size", check.size(self.image_size, "image_size"))
        if not self.has_heatmap:
            if self.heatmap_size is not None:
                raise ValueError(
                    f"codec {self.name!r} predicts coordinates, not maps: leave heatmap_size out, got {self.heatmap_size!r}"
                )
        elif self.heatmap_size is None:
            raise ValueError(f"codec {self.name!r} needs heatmap_size=(W, H)")
        else:
            self._set("heatmap_size", check.size(self.heatmap_size, "heatmap_size"))
        check.choice(self.on_outside, "on_outside", ("warn", "raise", "ignore"))
        self._decode_plans: dict[tuple[Any, ...], bool]
        self._set("_decode_plans", {})
        self._check_options()
        # image <-> heatmap, checked once here: encode and decode apply it without checks
        self._transform: coords.Transform  # not a field: set once here (frozen, so through _set)
        self._set("_transform", self._image_transform())
        # Build once on a tiny probe so bad options fail here, with the function's message.
        probe = self._probe_like(
            np.full((1, self._num_landmarks(), 2), [(w - 1) / 2 for w in self.image_size], dtype=np.float32)
        )
        self.decode(*self.encode(probe, rng=np.random.default_rng(0)).outputs)

    def _set(self, field: str, value: Any) -> None:
        object.__setattr__(self, field, value)

    @property
    def _size(self) -> tuple[int, int]:
        """``heatmap_size``, which ``__post_init__`` always sets (SimCC's to its bin counts)."""
        return cast("tuple[int, int]", self.heatmap_size)

    def _check_options(self) -> None:
        """Check the subclass's fields once, and keep what its kernels take (``_set``): encode and
        decode check only their arrays."""

    def _num_landmarks(self) -> int:
        return 1

    def _probe_like(self, probe: np.ndarray) -> Array:
        return probe

    @property
    def samples(self) -> bool:
        """Whether :meth:`Codec.encode` draws its target from ``rng`` (``"h3r"`` unless
        ``expected=True``); the other codecs ignore ``rng``."""
        return False

    @property
    def options(self) -> dict[str, Any]:
        """The codec's fields beyond the sizes, as :func:`get_codec` takes them."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("image_size", "heatmap_size")
        }

    def __repr__(self) -> str:
        items = [repr(self.name), f"image_size={self.image_size}"]
        items += [] if self.heatmap_size is None else [f"heatmap_size={self.heatmap_size}"]
        items += [f"{k}={self._option_repr(k, v)}" for k, v in self.options.items()]
        return f"get_codec({', '.join(items)})"

    def _option_repr(self, key: str, value: Any) -> str:
        return repr(value)

    # image <-> heatmap

    def to_heatmap(self, keypoints: Array, /) -> Array:
        """``(..., K, 2)`` image pixels -> the codec's heatmap pixels."""
        xp = _xp.namespace(keypoints=keypoints)
        check.coords(xp, keypoints, "keypoints")
        return _xp.in_float32(xp, coords.to_heatmap, keypoints, self._transform)

    def to_image(self, points: Array, /) -> Array:
        """``(..., K, 2)`` heatmap pixels -> image pixels (the inverse of :meth:`Codec.to_heatmap`)."""
        xp = _xp.namespace(points=points)
        check.coords(xp, points, "points")
        return _xp.in_float32(xp, coords.to_image, points, self._transform)

    def _convention(self) -> coords.Convention:
        return getattr(self, "convention", "pixel_center")

    def _image_transform(self) -> coords.Transform:
        """Image -> heatmap pixels, per axis ``(scale, offset)``: the codec's convention."""
        return coords.scale_offset(self.image_size, self._size, self._convention())

    def _inside_image(self, keypoints: Array) -> Array:
        """``(..., K)``: finite and in the image's valid range, ``[-0.5, W - 0.5)`` per axis."""
        return _common.inside_map(keypoints, *self.image_size)

    # the two calls

    def encode(self, keypoints: Array, /, *, weights: Array | None = None, rng: Any = None) -> EncodedTargets:
        """Targets for ``(..., K, 2)`` keypoints in image pixels.

        Args:
            keypoints: ``(..., K, 2)`` real ``(x, y)`` in image pixels.
            weights: optional ``(..., K)`` per-landmark weights or visibility (bool or numeric);
                0 leaves the landmark out.
            rng: a NumPy or torch ``Generator`` for the codecs that sample (``h3r`` unless
                ``expected=True``); ignored by the others.

        Returns:
            :class:`EncodedTargets` ``(outputs, weights, targets)`` in ``keypoints``' dtype and
            device.
        """
        xp = _xp.namespace(keypoints=keypoints, weights=weights)
        check.coords(xp, keypoints, "keypoints")
        if weights is not None:
            check.numeric(xp, weights, "weights")
            check.same_shape(weights, keypoints.shape[:-1], "weights", "keypoints.shape[:-1], one value per landmark")
        self._check_call(keypoints, rng)
        inside = self._inside_image(keypoints)
        if self.on_outside != "ignore":
            self._check_inside(xp, keypoints, weights, inside)
        # Outside the image is weight 0 under every convention (the heatmap's valid range is the
        # image's only under "pixel_center"): the family encoder sees it as a weight.
        if weights is None:
            weights = inside
        elif xp.isdtype(weights.dtype, "bool"):
            weights = weights & inside
        else:
            weights = xp.where(inside, weights, xp.zeros((), dtype=weights.dtype, device=_xp.device(weights)))
        targets = _xp.in_float32(xp, self._encode, keypoints, weights=weights, rng=rng)
        return EncodedTargets(tuple(targets[: len(self.output_names)]), targets.weights, targets)

    def decode(self, *outputs: Array) -> DecodedLandmarks:
        """``(coords, scores)`` from the network's outputs (as :attr:`EncodedTargets.outputs`).

        ``coords`` are ``(..., K, 2)`` ``(x, y)`` in image pixels, ``scores`` ``(..., K)`` (what
        the family's decoder reports: the map's maximum, or the score at the chosen cell).
        """
        # Outputs of NumPy dtypes and shapes that passed the checks once pass them again (the
        # checks read nothing else): checked once per signature, as einops caches a recipe per
        # shape. A data loader or an mmpose head decodes one instance at a time, every one alike.
        signature = _xp.numpy_signature(outputs)
        half = self._decode_plans.get(signature) if signature is not None else None
        if half is not None:  # the plan: whether the 16-bit policy applies
            xp = _xp.numpy_namespace()
            decoded = _xp.in_float32(xp, self._decode, *outputs) if half else self._decode(xp, *outputs)
            return DecodedLandmarks(*decoded)
        self._check_outputs(outputs)
        xp = _xp.namespace(**dict(zip(self.output_names, outputs)))
        checked = self._checked_outputs(xp, outputs)
        if signature is not None and len(self._decode_plans) < _PLANS and all(a is b for a, b in zip(checked, outputs)):
            self._decode_plans[signature] = any(_xp.work_dtype(xp, a.dtype) != a.dtype for a in outputs)
        return DecodedLandmarks(*_xp.in_float32(xp, self._decode, *checked))

    def _check_call(self, keypoints: Array, rng: Any) -> None:
        """What ``encode`` checks beyond the keypoints' type and weights (PIPNet's K, H3R's rng)."""

    def _checked_outputs(self, xp: Any, outputs: tuple[Array, ...]) -> tuple[Array, ...]:
        """The outputs' types (count and trailing shapes are ``_check_outputs``'): one map stack.

        Like ``_check_outputs``, it reads only the outputs' types, dtypes and shapes, never their
        values: ``decode`` skips both for a NumPy signature that passed them before."""
        for name, output in zip(self.output_names, outputs):
            check.heatmaps(xp, output, name)
        return outputs

    def _check_outputs(self, outputs: tuple[Any, ...]) -> None:
        """The outputs' count and trailing shapes against the codec's sizes (``decode``'s check)."""
        if len(outputs) != len(self.output_names):
            raise TypeError(
                f"codec {self.name!r} decodes {len(self.output_names)} output(s) ({', '.join(self.output_names)}), got {len(outputs)}"
            )
        for name, output, (layout, tail) in zip(self.output_names, outputs, self._output_layouts()):
            if not hasattr(output, "shape"):
                continue  # not an array: the family function names it
            shape = tuple(output.shape)
            if len(shape) < len(tail) or any(
                t is not None and a != t for a, t in zip(shape[len(shape) - len(tail) :], tail)
            ):
                sizes = ", ".join(layout.split(", ")[i] if t is None else str(t) for i, t in enumerate(tail))
                raise ValueError(
                    f"{name} must have shape (..., {layout}) = (..., {sizes}) for codec {self.name!r} with "
                    f"{self._sizes_text()}, got shape {shape}"
                )

    def _output_layouts(self) -> tuple[tuple[str, tuple[int | None, ...]], ...]:
        """Per output, its trailing axes' names and sizes (None: any), which :meth:`Codec.decode` checks."""
        w, h = self._size
        return (("K, H, W", (None, h, w)),)

    def _sizes_text(self) -> str:
        return f"heatmap_size={self.heatmap_size} (W, H)"

    def _encode(self, xp: Any, keypoints: Array, *, weights: Array | None, rng: Any) -> Any:
        """The family's encoding kernel on checked keypoints in image pixels."""
        raise NotImplementedError

    def _decode(self, xp: Any, *outputs: Array) -> tuple[Array, Array]:
        """The family's decoding kernel on checked outputs, to image pixels."""
        raise NotImplementedError

    def _heatmap(self, xp: Any, keypoints: Array) -> Array:
        return coords.to_heatmap(xp, keypoints, self._transform)

    def _image(self, xp: Any, decoded: tuple[Array, Array]) -> tuple[Array, Array]:
        return coords.to_image(xp, decoded[0], self._transform), decoded[1]

    def _check_inside(self, xp: Any, keypoints: Array, weights: Array | None, inside: Array) -> None:
        w, h = self.image_size
        x, y = keypoints[..., 0], keypoints[..., 1]
        counted = xp.isfinite(x) & xp.isfinite(y)
        if weights is not None:
            counted = counted & _xp.marked(xp, weights)
        outside = counted & ~inside
        n_counted = int(_xp.to_host(xp.sum(xp.astype(counted, xp.int64))))
        n_outside = int(_xp.to_host(xp.sum(xp.astype(outside, xp.int64))))
        if 2 * n_outside <= n_counted:
            return
        shown = _xp.to_host(counted)  # the message reads the counted keypoints' range on the host
        ox, oy = _xp.to_host(x)[shown], _xp.to_host(y)[shown]
        message = (
            f"{n_outside} of {n_counted} keypoints (finite, weight > 0) lie outside the {w}x{h} image "
            f"(x from {ox.min():.4g} to {ox.max():.4g}, y from {oy.min():.4g} to {oy.max():.4g}; the valid range is "
            f"[-0.5, {w - 0.5}) x [-0.5, {h - 0.5})) and get weight 0. Codecs take keypoints in image pixels of "
            f"image_size={self.image_size}; pass on_outside='ignore' to {self.name!r} if this is intended"
        )
        if self.on_outside == "raise":
            raise ValueError(message)
        warnings.warn(message, LandmarksOutsideWarning, stacklevel=3)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class _HeatmapCodec(Codec):
    output_names: ClassVar[tuple[str, ...]] = ("heatmaps",)
    convention: coords.Convention = "pixel_center"

    def _check_options(self) -> None:
        check.choice(self.convention, "convention", coords.CONVENTIONS)

    def _gaussian(self, xp: Any, keypoints: Array, weights: Array | None, sigma: float, rounding: str) -> Any:
        """The Gaussian target of ``sigma`` (checked at construction) at the keypoints' heatmap
        positions: the codecs whose target is :func:`~landmark_codecs.encode_gaussian`'s."""
        return gaussian.gaussian_targets(
            xp,
            self._heatmap(xp, keypoints),
            weights=weights,
            size=self._size,
            sigma=sigma,
            rounding=rounding,
            outside="empty",
        )


@_register
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class ArgmaxCodec(_HeatmapCodec):
    """``"argmax"``: the vanilla (MSRA / SimpleBaseline) codec. A Gaussian of ``sigma`` heatmap
    pixels at the *rounded* pixel (:func:`~landmark_codecs.encode_gaussian` with
    ``rounding="nearest"``; ``rounding="none"`` centres it on the sub-pixel position), decoded
    by the argmax (:func:`~landmark_codecs.decode_argmax`). Round trip: within half a heatmap
    pixel per axis."""

    name: ClassVar[str] = "argmax"
    sigma: float = 2.0
    rounding: Literal["nearest", "none"] = "nearest"
    _refine: ClassVar[Literal["none", "quarter"]] = "none"

    def _check_options(self) -> None:
        super()._check_options()
        check.sigma(self.sigma)
        check.choice(self.rounding, "rounding", ("none", "nearest"))

    def _encode(self, xp: Any, keypoints: Array, *, weights: Array | None, rng: Any) -> Any:
        return self._gaussian(xp, keypoints, weights, self.sigma, self.rounding)

    def _decode(self, xp: Any, heatmaps: Array) -> tuple[Array, Array]:
        return self._image(xp, argmax.argmax_coords(xp, heatmaps, refine=self._refine))


@_register
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class QuarterCodec(ArgmaxCodec):
    """``"quarter"``: the vanilla target decoded with the +/-0.25 pixel shift towards the higher
    neighbour (``decode_argmax(refine="quarter")``), mmpose's ``MSRAHeatmap``. On its own
    symmetric target the two neighbours tie and the shift is 0: round trip within half a heatmap
    pixel per axis. With ``rounding="none"`` (a sub-pixel target) the shift points to the true
    side: within a quarter pixel per axis."""

    name: ClassVar[str] = "quarter"
    _refine: ClassVar[Literal["none", "quarter"]] = "quarter"


@_register
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class DarkCodec(_HeatmapCodec):
    """``"dark"``: a sub-pixel Gaussian (:func:`~landmark_codecs.encode_gaussian`) decoded by
    DARK's Taylor refinement (:func:`~landmark_codecs.decode_dark`, ``iterations`` Newton steps,
    ``kernel_size`` its blur). Round trip: exact to float rounding (DARK, Zhang et al., CVPR 2020)."""

    name: ClassVar[str] = "dark"
    sigma: float = 2.0
    iterations: int = 4
    kernel_size: int | None = None

    def _check_options(self) -> None:
        super()._check_options()
        self._dark: dict[str, Any]
        self._set("_dark", dark.dark_options(self._size, self.sigma, self.iterations, self.kernel_size))

    def _encode(self, xp: Any, keypoints: Array, *, weights: Array | None, rng: Any) -> Any:
        return self._gaussian(xp, keypoints, weights, self.sigma, "none")

    def _decode(self, xp: Any, heatmaps: Array) -> tuple[Array, Array]:
        return self._image(xp, dark.dark_coords(xp, heatmaps, **self._dark))


@_register
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class UDPCodec(Codec):
    """``"udp"``: UDP's corner-aligned transform with a sub-pixel Gaussian and DARK
    (:func:`~landmark_codecs.encode_udp`, :func:`~landmark_codecs.decode_udp`; Huang et al.,
    CVPR 2020). Round trip: exact to float rounding."""

    name: ClassVar[str] = "udp"
    output_names: ClassVar[tuple[str, ...]] = ("heatmaps",)
    sigma: float = 2.0
    iterations: int = 4
    kernel_size: int | None = None

    def _convention(self) -> coords.Convention:
        return "udp"

    def _check_options(self) -> None:
        super()._check_options()
        self._dark: dict[str, Any]
        self._set("_dark", dark.dark_options(self._size, self.sigma, self.iterations, self.kernel_size))

    def _encode(self, xp: Any, keypoints: Array, *, weights: Array | None, rng: Any) -> Any:
        return udp.udp_targets(
            xp, keypoints, weights=weights, transform=self._transform, size=self._size, sigma=self.sigma
        )

    def _decode(self, xp: Any, heatmaps: Array) -> tuple[Array, Array]:
        return udp.udp_coords(xp, heatmaps, transform=self._transform, **self._dark)


@_register
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class UDPCombinedCodec(Codec):
    """``"udp_combined"``: UDP's combined target, corner-aligned
    (:func:`~landmark_codecs.encode_udp_combined`, :func:`~landmark_codecs.decode_udp_combined`;
    Huang et al., CVPR 2020; mmpose's ``UDPHeatmap(heatmap_type="combined")``). Outputs: the disk
    maps ``(..., K, H, W)`` of ``radius`` heatmap pixels and the offsets ``(..., K, 2, H, W)``
    in units of ``radius``; decoded at the disk map's argmax after a ``kernel_size`` Gaussian
    blur (``None``: none). Round trip: exact to float rounding."""

    name: ClassVar[str] = "udp_combined"
    output_names: ClassVar[tuple[str, ...]] = ("heatmaps", "offsets")
    radius: float = 3.5
    kernel_size: int | None = 23

    def _convention(self) -> coords.Convention:
        return "udp"

    def _output_layouts(self) -> tuple[tuple[str, tuple[int | None, ...]], ...]:
        w, h = self._size
        return (("K, H, W", (None, h, w)), ("K, 2, H, W", (None, 2, h, w)))

    def _check_options(self) -> None:
        super()._check_options()
        self._combined: dict[str, Any]
        self._set(
            "_combined", udp.udp_combined_decode_options(self.image_size, self._size, self.radius, self.kernel_size)
        )

    def _checked_outputs(self, xp: Any, outputs: tuple[Array, ...]) -> tuple[Array, ...]:
        return udp.check_combined(xp, *outputs)

    def _encode(self, xp: Any, keypoints: Array, *, weights: Array | None, rng: Any) -> Any:
        return udp.udp_combined_targets(
            xp,
            keypoints,
            weights=weights,
            transform=self._transform,
            size=self._size,
            radius=self._combined["radius"],
            outside="empty",
        )

    def _decode(self, xp: Any, heatmaps: Array, offsets: Array) -> tuple[Array, Array]:
        return udp.udp_combined_coords(xp, heatmaps, offsets, **self._combined)


@_register
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class MegviiCodec(_HeatmapCodec):
    """``"megvii"``: the MSPN / RSN target (Li et al., 2019; mmpose's ``MegviiHeatmap``): a
    Gaussian on the heatmap pixel holding the keypoint (``rounding="nearest"``) whose sigma is
    OpenCV's for a ``kernel_size`` blur, ``0.3 ((kernel_size - 1) / 2 - 1) + 0.8``, decoded by
    DARK with that sigma and kernel (:func:`~landmark_codecs.decode_dark`; mmpose decodes with
    the quarter shift). On its own target it returns the centre of the pixel holding the keypoint
    exactly: round trip within half a heatmap pixel per axis (the target's quantization; the
    error is uniform, so unbiased, for a keypoint uniform in its pixel); on a network's sub-pixel
    output DARK refines."""

    name: ClassVar[str] = "megvii"
    kernel_size: int = 11

    def _check_options(self) -> None:
        super()._check_options()
        check.odd_size(self.kernel_size, "kernel_size", "the kernel is centred on a pixel")
        if self.kernel_size < 5:
            raise ValueError(
                f"kernel_size must be at least 5 for codec 'megvii': below it OpenCV's sigma rule gives sigma <= 0.8, "
                f"and DARK is exact on its target for sigma >= 1; got {self.kernel_size}"
            )
        self._dark: dict[str, Any]
        self._set("_dark", dark.dark_options(self._size, self.sigma, 4, self.kernel_size))

    @property
    def sigma(self) -> float:
        """The target's sigma in heatmap pixels: OpenCV's for ``kernel_size``."""
        return 0.3 * ((self.kernel_size - 1) * 0.5 - 1) + 0.8

    def _encode(self, xp: Any, keypoints: Array, *, weights: Array | None, rng: Any) -> Any:
        return self._gaussian(xp, keypoints, weights, self.sigma, "nearest")

    def _decode(self, xp: Any, heatmaps: Array) -> tuple[Array, Array]:
        return self._image(xp, dark.dark_coords(xp, heatmaps, **self._dark))


@_register
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class SimCCCodec(Codec):
    """``"simcc"``: SimCC's 1-D labels, ``split_ratio`` bins per image pixel
    (:func:`~landmark_codecs.encode_simcc`, :func:`~landmark_codecs.decode_simcc`; Li et al.,
    ECCV 2022). ``sigma`` is in bins (one, or an ``(x, y)`` pair); ``refine="dark"`` (the default here) refines the argmax with
    1-D DARK, which makes the round trip exact to float rounding; ``refine="none"`` is the
    paper's argmax (within half a bin). ``smoothing="standard"`` (one-hot labels with
    ``label_smooth_weight``) decodes with ``refine="none"``. ``heatmap_size`` may be left out, or given as the bin
    counts ``simcc_bins(image_size, split_ratio)``."""

    name: ClassVar[str] = "simcc"
    output_names: ClassVar[tuple[str, ...]] = ("x_labels", "y_labels")
    sigma: float | tuple[float, float] = 6.0
    split_ratio: float = 2.0
    convention: coords.Convention = "pixel_center"
    normalize: bool = False
    refine: Literal["none", "dark"] = "dark"
    iterations: int = 4
    kernel_size: int | None = None
    smoothing: Literal["gaussian", "standard"] = "gaussian"
    label_smooth_weight: float = 0.0

    def __post_init__(self) -> None:
        size = check.size(self.image_size, "image_size")
        bins = simcc.simcc_bins(size, self.split_ratio)
        if self.heatmap_size is not None and tuple(check.size(self.heatmap_size, "heatmap_size")) != tuple(bins):
            raise ValueError(
                f"codec 'simcc' has {bins[0]}x{bins[1]} bins for image_size={tuple(size)} and split_ratio={self.split_ratio}; "
                f"heatmap_size must be left out or equal {tuple(bins)}, got {tuple(self.heatmap_size)}"
            )
        self._set("heatmap_size", tuple(bins))
        super().__post_init__()

    def _check_options(self) -> None:
        check.choice(self.convention, "convention", coords.CONVENTIONS)
        if not isinstance(self.sigma, (int, float)):  # a pair: kept as a tuple of two floats
            self._set("sigma", check.axis_sigmas(self.sigma))
        if self.smoothing == "standard" and self.refine == "dark":
            raise ValueError(
                'codec \'simcc\' with smoothing="standard" (one-hot labels) decodes with refine="none": '
                'refine="dark" fits Gaussian labels'
            )
        encoding = simcc.simcc_encode_options(
            self.image_size,
            self.sigma,
            self.split_ratio,
            self.convention,
            self.normalize,
            self.smoothing,
            self.label_smooth_weight,
        )
        self._simcc_encode: dict[str, Any]
        self._set("_simcc_encode", encoding)
        decoding = simcc.simcc_decode_options(
            self.image_size,
            self.split_ratio,
            self.convention,
            self.refine,
            self.sigma if self.refine == "dark" else None,
            self.iterations,
            self.kernel_size,
        )
        self._simcc_decode: dict[str, Any]
        self._set("_simcc_decode", decoding)

    def _output_layouts(self) -> tuple[tuple[str, tuple[int | None, ...]], ...]:
        w, h = self._size
        return (("K, W * split_ratio", (None, w)), ("K, H * split_ratio", (None, h)))

    def _sizes_text(self) -> str:
        return f"image_size={self.image_size} and split_ratio={self.split_ratio!r}"

    def _checked_outputs(self, xp: Any, outputs: tuple[Array, ...]) -> tuple[Array, ...]:
        x_labels, y_labels = outputs
        return simcc.check_labels(xp, x_labels, y_labels, self._size, self.image_size, self.split_ratio)

    def _encode(self, xp: Any, keypoints: Array, *, weights: Array | None, rng: Any) -> Any:
        return simcc.simcc_targets(xp, keypoints, weights=weights, **self._simcc_encode)

    def _decode(self, xp: Any, x_labels: Array, y_labels: Array) -> tuple[Array, Array]:
        return simcc.simcc_coords(xp, x_labels, y_labels, **self._simcc_decode)


def _require_logits(codec: Codec) -> None:
    logits = getattr(codec, "logits", None)
    if logits is None:
        raise TypeError(
            f"codec {codec.name!r} needs logits=True (the network outputs logits, trained through a softmax) or "
            "logits=False (probabilities or scores, e.g. the codec's own targets): decoding one as the other is "
            "silently wrong, and no default suits every network (as decode_soft_argmax and "
            "decode_randomized_rounding)"
        )
    check.boolean(logits, "logits")


@_register
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class H3RCodec(_HeatmapCodec):
    """``"h3r"``: heatmap regression via randomized rounding (Yu and Tao, TPAMI 2021).

    The target (:func:`~landmark_codecs.encode_randomized_rounding`) is a one-hot map at the
    keypoint rounded at random to one of its <= 4 neighbouring pixels (sampled from ``rng``;
    unbiased, within one heatmap pixel per axis), or with ``expected=True`` its expectation, the
    bilinear weights (lossless). The decoder (:func:`~landmark_codecs.decode_randomized_rounding`)
    takes the ``top_k`` highest pixels (``activation="topk"``) or a ``window_size`` window
    (``"window"``). ``logits`` is required, as by the decoder: ``True`` when the network outputs
    logits (trained through a softmax), ``False`` for probabilities (the codec's own targets)."""

    name: ClassVar[str] = "h3r"
    expected: bool = False
    sigma: float | None = None
    top_k: int = 9
    activation: Literal["topk", "window"] = "topk"
    window_size: int = 3
    logits: bool | None = None

    def _check_options(self) -> None:
        super()._check_options()
        check.boolean(self.expected, "expected")
        _require_logits(self)
        if self.sigma is not None:
            check.sigma(self.sigma)
        options = rounding.rounding_decode_options(
            self._size, self.top_k, self.activation, self.window_size, bool(self.logits)
        )
        self._h3r: dict[str, Any]
        self._set("_h3r", options)

    def _check_call(self, keypoints: Array, rng: Any) -> None:
        if self.samples and rng is None:
            raise ValueError(
                "codec 'h3r' samples its target: pass rng= (a NumPy or torch Generator), or build it with expected=True"
            )

    @property
    def samples(self) -> bool:
        return not self.expected

    def _encode(self, xp: Any, keypoints: Array, *, weights: Array | None, rng: Any) -> Any:
        return rounding.rounding_targets(
            xp,
            self._heatmap(xp, keypoints),
            weights=weights,
            noise=None,
            size=self._size,
            expected=self.expected,
            sigma=self.sigma,
            rng=None if self.expected else rng,
        )

    def _decode(self, xp: Any, heatmaps: Array) -> tuple[Array, Array]:
        return self._image(xp, rounding.rounding_coords(xp, heatmaps, **self._h3r))


@_register
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class SoftArgmaxCodec(_HeatmapCodec):
    """``"soft_argmax"``: integral regression / DSNT. The target is the probability map of
    :func:`~landmark_codecs.encode_soft_argmax` (a Gaussian of ``sigma`` heatmap pixels whose
    expectation is exactly the keypoint, also at the border); the decoder is
    :func:`~landmark_codecs.decode_soft_argmax` with inverse temperature ``beta``, reading
    ``logits`` (``True`` for a network head) or probabilities (``False``: the codec's own
    targets); required, as by the decoder. Round trip: exact to float rounding. ``debias=True``
    (with ``logits=True``) is integral regression with Gu et al.'s compensation (ICCV 2021) of the
    zero-logit background (``decode_soft_argmax(debias=True)``): exact on logits
    ``log(1 + s * target)`` for any scale ``s > 0``, where the plain decoder is pulled towards the
    map's centre."""

    name: ClassVar[str] = "soft_argmax"
    sigma: float = 1.0
    beta: float = 1.0
    logits: bool | None = None
    debias: bool = False

    def _check_options(self) -> None:
        super()._check_options()
        _require_logits(self)
        if check.boolean(self.debias, "debias") and not self.logits:
            raise ValueError(
                "codec 'soft_argmax' with debias=True needs logits=True: the compensation is for the softmax of logits"
            )
        check.sigma(self.sigma)
        self._soft: dict[str, Any]
        self._set("_soft", soft_argmax.soft_argmax_decode_options(self.beta, bool(self.logits), self.debias))

    def _encode(self, xp: Any, keypoints: Array, *, weights: Array | None, rng: Any) -> Any:
        return soft_argmax.soft_argmax_targets(
            xp, self._heatmap(xp, keypoints), weights=weights, size=self._size, sigma=self.sigma
        )

    def _decode(self, xp: Any, heatmaps: Array) -> tuple[Array, Array]:
        return self._image(xp, soft_argmax.soft_argmax_coords(xp, heatmaps, **self._soft))


@_register
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class RegressionCodec(Codec):
    """``"regression"``: direct regression (DeepPose; RLE, Li et al., ICCV 2021; mmpose's
    ``RegressionLabel``): the labels are the keypoints over ``image_size``
    (:func:`~landmark_codecs.encode_regression`); decoding multiplies back, and reads RLE's
    ``(sigma_x, sigma_y)`` as a score ``1 - mean(sigma)`` when the output is ``(..., K, 4)``
    (:func:`~landmark_codecs.decode_regression`). No heatmap: leave ``heatmap_size`` out. Round
    trip: exact to float rounding."""

    name: ClassVar[str] = "regression"
    output_names: ClassVar[tuple[str, ...]] = ("labels",)
    has_heatmap: ClassVar[bool] = False

    @property
    def _size(self) -> tuple[int, int]:
        return self.image_size

    def _output_layouts(self) -> tuple[tuple[str, tuple[int | None, ...]], ...]:
        return (("K, 2 or 4", (None, None)),)

    def _sizes_text(self) -> str:
        return f"image_size={self.image_size}"

    def _checked_outputs(self, xp: Any, outputs: tuple[Array, ...]) -> tuple[Array, ...]:
        regression.check_labels(xp, outputs[0])
        return outputs

    def _encode(self, xp: Any, keypoints: Array, *, weights: Array | None, rng: Any) -> Any:
        return regression.regression_targets(xp, keypoints, weights=weights, size=self.image_size)

    def _decode(self, xp: Any, labels: Array) -> tuple[Array, Array]:
        return regression.regression_coords(xp, labels, size=self.image_size)


@_register
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class PIPNetCodec(_HeatmapCodec):
    """``"pipnet"``: Pixel-in-Pixel Net (Jin et al., IJCV 2021) on a ``heatmap_size`` grid of cells.

    Outputs: the score maps, the ``(x, y)`` offsets inside the cell and the neighbours' offsets
    (:func:`~landmark_codecs.encode_pipnet`); decoding merges each landmark's own prediction with
    its neighbours' (:func:`~landmark_codecs.decode_pipnet`, ``merge``). The neighbour table comes
    from ``mean_shape`` (a ``(K, 2)`` array or a packaged name: ``"300w68"``, ``"wflw98"``,
    ``"cofw29"``, ``"aflw19"``) with ``num_neighbors`` neighbours, or is given as ``neighbors``
    (from :func:`~landmark_codecs.pipnet_neighbors`). Round trip: exact to float rounding."""

    name: ClassVar[str] = "pipnet"
    output_names: ClassVar[tuple[str, ...]] = ("scores", "offsets", "neighbor_offsets")
    mean_shape: Any = None
    num_neighbors: int = 10
    neighbors: pipnet.PIPNetNeighbors | None = None
    merge: pipnet.Merge = "mean"

    def _check_options(self) -> None:
        super()._check_options()
        if (self.mean_shape is None) == (self.neighbors is None):
            raise ValueError(
                "codec 'pipnet' needs exactly one of mean_shape= (a (K, 2) array or a packaged name) and neighbors= (a pipnet_neighbors table)"
            )
        if self.neighbors is None:
            shape = self.mean_shape
            if isinstance(shape, str):
                if shape not in MEAN_SHAPES:
                    raise ValueError(
                        f"mean_shape must be a (K, 2) array or one of {', '.join(MEAN_SHAPES)}, got {shape!r}"
                    )
                shape = _mean_shape(shape)
            else:
                shape = check.real_host(_xp.to_host(shape, "mean_shape"), "mean_shape").astype(np.float64)
            if shape.ndim != 2 or shape.shape[-1] != 2 or shape.shape[0] < 2:
                raise ValueError(f"mean_shape must have shape (K, 2) with K >= 2, got {tuple(shape.shape)}")
            table = pipnet.pipnet_neighbors(shape, num_neighbors=self.num_neighbors)
        else:
            if not isinstance(self.neighbors, pipnet.PIPNetNeighbors):
                raise TypeError(
                    f"neighbors must be the PIPNetNeighbors table from pipnet_neighbors, got {type(self.neighbors).__qualname__}"
                )
            table = self.neighbors  # as given: tensors on a device stay there (and trace under torch.compile)
            pipnet.host_checked_table(table)  # the functions check only host tables' values: check a copy once
        self._table: pipnet.PIPNetNeighbors  # not a field: built here, once (frozen, so set through _set)
        self._set("_table", table)

    def _probe_like(self, probe: np.ndarray) -> Array:
        index = self._table.index
        if _xp.on_host(index):
            return probe
        xp = _xp.namespace(neighbors=index)
        return xp.asarray(probe, device=_xp.device(index))

    def _num_landmarks(self) -> int:
        return int(self._table.index.shape[0])

    def _output_layouts(self) -> tuple[tuple[str, tuple[int | None, ...]], ...]:
        w, h = self._size
        k, n = (int(v) for v in self._table.index.shape)
        return (("K, Hg, Wg", (k, h, w)), ("K, 2, Hg, Wg", (k, 2, h, w)), ("K, N, 2, Hg, Wg", (k, n, 2, h, w)))

    def _sizes_text(self) -> str:
        return f"heatmap_size={self.heatmap_size} (Wg, Hg) and {self._num_landmarks()} landmarks"

    def _option_repr(self, key: str, value: Any) -> str:
        if key == "mean_shape" and not isinstance(value, (str, type(None))):
            return f"<{tuple(value.shape)} array>"
        if key == "neighbors" and value is not None:
            return f"<PIPNetNeighbors K={value.index.shape[0]} N={value.index.shape[1]}>"
        return repr(value)

    def _check_call(self, keypoints: Array, rng: Any) -> None:
        k = self._num_landmarks()
        if keypoints.shape[-2] != k:
            raise ValueError(
                f"codec 'pipnet' was built for K = {k} landmarks, got keypoints of shape {tuple(keypoints.shape)}"
            )

    def _encode(self, xp: Any, keypoints: Array, *, weights: Array | None, rng: Any) -> Any:
        # the table on the keypoints' device (checked at construction: a host table's values are
        # not read again; a device table's out-of-range entries become NaN targets)
        index, outside = pipnet._index(xp, self._table.index, keypoints, self._num_landmarks(), "keypoints")
        return pipnet.pipnet_targets(
            xp, self._heatmap(xp, keypoints), weights=weights, size=self._size, index=index, outside=outside
        )

    def decode(self, *outputs: Array) -> DecodedLandmarks:
        """``(coords, scores)`` from the network's outputs (as :attr:`EncodedTargets.outputs`),
        ``coords`` in image pixels (the neighbour merging of :func:`~landmark_codecs.decode_pipnet`)."""
        return self._decode_with_table(outputs, self._table)

    def _decode_with_table(self, outputs: tuple[Array, ...], table: pipnet.PIPNetNeighbors) -> DecodedLandmarks:
        """:meth:`~landmark_codecs.codecs.PIPNetCodec.decode` with the same table on the outputs' device (``landmark_codecs.torch.CodecDecoder``'s buffers)."""
        self._check_outputs(outputs)
        xp = _xp.namespace(**dict(zip(self.output_names, outputs)))
        scores, offsets, neighbor_offsets = outputs
        scores, offsets, neighbor_offsets, plan = pipnet.check_outputs(xp, scores, offsets, neighbor_offsets, table)
        return DecodedLandmarks(*_xp.in_float32(xp, self._decode, scores, offsets, neighbor_offsets, plan=plan))

    def _decode(self, xp: Any, *outputs: Array, plan: dict[str, Any] | None = None) -> tuple[Array, Array]:
        return self._image(xp, pipnet.pipnet_coords(xp, *outputs, merge=self.merge, **(plan or {})))


@_register
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class LocalSoftArgmaxCodec(_HeatmapCodec):
    """``"local_soft_argmax"``: a sub-pixel Gaussian of ``sigma`` heatmap pixels
    (:func:`~landmark_codecs.encode_gaussian`) decoded by a softmax over a ``window_size`` window
    around the maximum (:func:`~landmark_codecs.decode_local_soft_argmax`; Bulat et al., BMVC
    2021), with ``exact=True`` (the default) the window's truncation inverted for that sigma.
    ``logits`` is required, as by the decoder: ``False`` decodes the codec's own targets (and
    any non-negative map), ``True`` a network's logits (the log of the target is then exact).
    Round trip: exact to float rounding with ``exact=True`` and a window of at least 3; the
    plain window mean (``exact=False``) is biased towards the window's centre."""

    name: ClassVar[str] = "local_soft_argmax"
    sigma: float = 1.5
    window_size: int = 5
    beta: float = 1.0
    logits: bool | None = None
    exact: bool = True

    def _check_options(self) -> None:
        super()._check_options()
        _require_logits(self)
        check.sigma(self.sigma)
        check.boolean(self.exact, "exact")
        options = {
            "window_size": check.odd_size(self.window_size, "window_size", "the window is centred on the maximum"),
            "beta": check.positive(self.beta, "beta"),
            "logits": bool(self.logits),
            "sigma": self.sigma if self.exact else None,
        }
        self._local: dict[str, Any]
        self._set("_local", options)

    def _encode(self, xp: Any, keypoints: Array, *, weights: Array | None, rng: Any) -> Any:
        return self._gaussian(xp, keypoints, weights, self.sigma, "none")

    def _decode(self, xp: Any, heatmaps: Array) -> tuple[Array, Array]:
        return self._image(xp, soft_argmax.local_soft_argmax_coords(xp, heatmaps, **self._local))


@_register
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class LocRefCodec(_HeatmapCodec):
    """``"locref"``: DeepLabCut's score map and location refinement
    (:func:`~landmark_codecs.encode_locref`, :func:`~landmark_codecs.decode_locref`). Outputs:
    the score maps ``(..., K, H, W)`` (``kind``: ``"gaussian"`` or ``"plateau"``) and the locref
    maps ``(..., K, 2, H, W)``; ``radius`` and ``locref_std`` are in heatmap pixels, DeepLabCut's
    ``pos_dist_thresh`` and ``locref_std`` over the stride (the defaults are its 17 and 7.2801 at
    stride 8). ``convention="deeplabcut"`` (the default) puts cell ``j``'s centre at image
    ``x = j * stride + stride / 2``, as DeepLabCut does (its image's valid range is then
    ``[0, W)``); ``"pixel_center"`` is the library's. Round trip: exact to float rounding for
    keypoints inside the map."""

    name: ClassVar[str] = "locref"
    output_names: ClassVar[tuple[str, ...]] = ("heatmaps", "locref")
    radius: float = 2.125
    locref_std: float = 0.910
    kind: locref.LocRefKind = "gaussian"
    convention: Literal["deeplabcut", "pixel_center"] = "deeplabcut"  # type: ignore[assignment]

    def _check_options(self) -> None:
        check.choice(self.convention, "convention", ("deeplabcut", "pixel_center"))
        self._locref: dict[str, Any]
        self._set("_locref", locref.locref_options(self.radius, self.locref_std, self.kind))

    def _image_transform(self) -> coords.Transform:
        if self.convention == "pixel_center":
            return super()._image_transform()
        (wi, hi), (wh, hh) = self.image_size, self._size
        return (wh / wi, hh / hi), (-0.5, -0.5)  # x_h = x_i / stride - 1/2: cell j at j * stride + stride / 2

    def _inside_image(self, keypoints: Array) -> Array:
        if self.convention == "pixel_center":
            return super()._inside_image(keypoints)
        return _common.inside_map(keypoints - 0.5, *self.image_size)  # DeepLabCut's grid covers [0, W)

    def _output_layouts(self) -> tuple[tuple[str, tuple[int | None, ...]], ...]:
        w, h = self._size
        return (("K, H, W", (None, h, w)), ("K, 2, H, W", (None, 2, h, w)))

    def _checked_outputs(self, xp: Any, outputs: tuple[Array, ...]) -> tuple[Array, ...]:
        heatmaps, offsets = outputs
        return locref.check_outputs(xp, heatmaps, offsets)

    def _encode(self, xp: Any, keypoints: Array, *, weights: Array | None, rng: Any) -> Any:
        return locref.locref_targets(xp, self._heatmap(xp, keypoints), weights=weights, size=self._size, **self._locref)

    def _decode(self, xp: Any, heatmaps: Array, offsets: Array) -> tuple[Array, Array]:
        return self._image(xp, locref.locref_coords(xp, heatmaps, offsets, locref_std=self._locref["locref_std"]))
