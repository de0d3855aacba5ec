"""The mmpose plugin: ``import landmark_codecs.mmpose`` registers ``LandmarkCodec`` in mmpose's
``KEYPOINT_CODECS`` registry, so a config builds any of our codecs by name::

    codec = dict(type="LandmarkCodec", name="h3r", input_size=(256, 256), heatmap_size=(64, 64), expected=True, logits=True)

(add ``custom_imports = dict(imports=["landmark_codecs.mmpose"], allow_failed_imports=False)``
to the config). Every :func:`landmark_codecs.get_codec` option is accepted; ``input_size`` is
mmpose's name for ``image_size``.

The interface is mmpose's (``BaseKeypointCodec``):

- ``encode(keypoints (N, K, 2), keypoints_visible (N, K)) -> dict`` with ``keypoint_weights``
  ``(N, K)`` and the outputs under the keys mmpose's heads read: ``heatmaps`` ``(K, H, W)`` for
  the heatmap codecs (single instance, as mmpose's heatmap codecs; ``N > 1`` is refused),
  ``keypoint_x_labels`` and ``keypoint_y_labels`` ``(N, K, W*r)``, ``(N, K, H*r)`` for
  ``"simcc"``, and ``pipnet_scores``, ``pipnet_offsets``, ``pipnet_neighbor_offsets`` for
  ``"pipnet"`` (no mmpose head reads these: a custom head does);
- ``decode(*outputs)`` on one instance's NumPy outputs (``(K, H, W)``; SimCC's two label sets)
  returns ``(keypoints (1, K, 2), scores (1, K))`` in input-image pixels (SimCC labels with a
  leading ``N``, ``(N, K, W*r)``, give ``(N, K, 2)`` and ``(N, K)``, as mmpose's ``SimCCLabel``);
- ``batch_decode(*outputs)`` on a batch of tensors ``(B, K, H, W)`` decodes them in one call on
  their device and returns per-instance lists, as mmpose's heads expect.

Convention:
    mmpose's keypoints are ``(x, y)`` in input-image pixels with integers at pixel centres, as
    ours; the codec maps them to its heatmap with its ``convention`` (``"pixel_center"`` by
    default, where mmpose's MSRA and DARK codecs divide by the stride: ``convention="legacy"``
    reproduces that).

Keypoints outside the input (truncated instances, normal in a pose pipeline) get weight 0; the
codec's ``LandmarksOutsideWarning`` comes at most once per ``LandmarkCodec`` object, saying how
to silence it (``on_outside="ignore"``) or make it an error (``"raise"``).

Randomness: mmpose's ``encode`` takes no generator, so a sampling codec (``"h3r"`` unless
``expected=True``) draws from a NumPy generator the plugin owns: seeded by ``seed`` (or from
the operating system's entropy when ``seed`` is None) and, inside DataLoader workers, by the
worker's seed too, so workers never repeat one another's noise.

Importing this module needs mmpose (``pip install "landmark_codecs[mmpose]"``); nothing else in
the package imports it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
from mmengine.registry import Registry
from mmpose.codecs.base import BaseKeypointCodec
from mmpose.registry import KEYPOINT_CODECS

from . import _common, _xp
from . import _validation as check
from .codecs import Codec, LandmarksOutsideWarning, PIPNetCodec, SimCCCodec, get_codec
from .coords import Convention, image_to_heatmap
from .dark import decode_dark
from .gaussian import encode_gaussian
from .simcc import _standard_label, simcc_visibility
from .udp import decode_udp_combined, encode_udp_combined

__all__ = [
    "CODECS",
    "IntegralRegressionLabel",
    "LandmarkCodec",
    "MSRAHeatmap",
    "MegviiHeatmap",
    "RegressionLabel",
    "SimCCLabel",
    "SingleInstanceError",
    "UDPHeatmap",
]

#: The drop-ins' registry: a child of mmpose's ``KEYPOINT_CODECS`` under the scope
#: ``landmark_codecs``, so a config's ``type="landmark_codecs.MSRAHeatmap"`` builds ours where
#: ``type="MSRAHeatmap"`` builds mmpose's.
CODECS = Registry(
    "keypoint codec", parent=KEYPOINT_CODECS, scope="landmark_codecs", locations=["landmark_codecs.mmpose"]
)


class SingleInstanceError(ValueError, AssertionError):
    """More than one instance given to a single-instance codec. A ValueError, as this library's
    bad input is, and an AssertionError, which mmpose's codecs raise there and its tests catch."""


_OUTPUT_KEYS = {
    SimCCCodec: ("keypoint_x_labels", "keypoint_y_labels"),
    PIPNetCodec: ("pipnet_scores", "pipnet_offsets", "pipnet_neighbor_offsets"),
}


@KEYPOINT_CODECS.register_module()
class LandmarkCodec(BaseKeypointCodec):
    """Any :func:`landmark_codecs.get_codec` codec behind mmpose's codec interface.

    Args:
        name: a name from :func:`landmark_codecs.codec_names`.
        input_size: ``(W, H)`` of the network input (mmpose's name for ``image_size``).
        heatmap_size: ``(W, H)`` of the maps (the grid for ``"pipnet"``; none for ``"simcc"``).
        seed: seeds the generator of a sampling codec (see :mod:`landmark_codecs.mmpose`).
        options: the codec's options (``sigma``, ``expected``, ``top_k``, ``logits``, ...).
    """

    def __init__(
        self,
        name: str,
        input_size: Sequence[int],
        heatmap_size: Sequence[int] | None = None,
        seed: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        self.codec: Codec = get_codec(name, image_size=input_size, heatmap_size=heatmap_size, **options)
        self.input_size, self.heatmap_size = self.codec.image_size, self.codec.heatmap_size
        self.seed = check.seed(seed)
        self._samples = self.codec.samples
        self._rng: tuple[Any, np.random.Generator] | None = None
        self._warned_outside = False
        if isinstance(self.codec, SimCCCodec):  # what mmpose's SimCCHead reads from its decoder
            self.sigma = np.array(check.axis_sigmas(self.codec.sigma))
            self.simcc_split_ratio = self.codec.split_ratio
        keys = _OUTPUT_KEYS.get(type(self.codec))
        self._single_instance = keys is None
        self.output_keys = ("heatmaps",) if keys is None else keys
        # What mmpose's PackPoseInputs moves where: maps are fields, labels and weights per instance.
        self.field_mapping_table = {"heatmaps": "heatmaps"} if keys is None else {}
        self.label_mapping_table = {
            "keypoint_weights": "keypoint_weights",
            **({} if keys is None else {k: k for k in keys}),
        }

    def encode(self, keypoints: np.ndarray, keypoints_visible: np.ndarray | None = None) -> dict:
        """Targets for ``(N, K, 2)`` keypoints in input-image pixels (see :mod:`landmark_codecs.mmpose`)."""
        keypoints = check.real_host(_xp.to_host(keypoints, "keypoints"), "keypoints").astype(np.float32)
        if keypoints.ndim != 3 or keypoints.shape[-1] != 2:
            raise ValueError(f"keypoints must have shape (N, K, 2), got shape {keypoints.shape}")
        if self._single_instance and keypoints.shape[0] != 1:
            raise ValueError(
                f"LandmarkCodec({self.codec.name!r}) encodes one instance, as mmpose's heatmap codecs: got N = {keypoints.shape[0]}"
            )
        weights = None
        if keypoints_visible is not None:
            visible = check.real_host(
                _xp.to_host(keypoints_visible, "keypoints_visible"), "keypoints_visible", booleans=True
            )
            weights = visible.astype(np.float32)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", LandmarksOutsideWarning)
            encoded = self.codec.encode(keypoints, weights=weights, rng=self._generator() if self._samples else None)
        for w in caught:  # truncated instances are normal in pose: once per codec object, not per sample
            if not issubclass(w.category, LandmarksOutsideWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            elif not self._warned_outside:
                self._warned_outside = True
                warnings.warn(
                    f"{w.message} (LandmarkCodec warns once per codec object: later samples with keypoints outside the "
                    "input get weight 0 silently; on_outside='ignore' silences this, on_outside='raise' makes it an error)",
                    LandmarksOutsideWarning,
                    stacklevel=2,
                )
        outputs = encoded.outputs
        if self._single_instance:
            outputs = tuple(o[0] for o in outputs)  # mmpose's heatmap heads take (K, H, W) per sample
        return {**dict(zip(self.output_keys, outputs)), "keypoint_weights": encoded.weights}

    def decode(self, *encoded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One instance's outputs (``(K, H, W)``, or SimCC's ``(K, W*r)`` and ``(K, H*r)``) ->
        ``(keypoints (1, K, 2), scores (1, K))`` in input-image pixels. SimCC labels may also
        come with a leading ``N`` (``(N, K, W*r)``, as mmpose's ``SimCCLabel`` takes them):
        ``(keypoints (N, K, 2), scores (N, K))``."""
        arrays = [np.asarray(_xp.to_host(e, "encoded")) for e in encoded]
        if not (type(self.codec) is SimCCCodec and arrays and arrays[0].ndim == 3):
            arrays = [a[None] for a in arrays]  # one instance
        decoded = self.codec.decode(*arrays)
        return decoded.coords, decoded.scores

    def batch_decode(self, *batch: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """A batch of outputs (tensors ``(B, K, H, W)`` or SimCC's ``(B, K, W*r)``,
        ``(B, K, H*r)``) decoded in one call on their device; per-instance ``(1, K, 2)`` keypoints
        and ``(1, K)`` scores, as NumPy, in lists."""
        decoded = self.codec.decode(*(b.detach() if hasattr(b, "detach") else b for b in batch))
        coords, scores = _xp.to_host(decoded.coords), _xp.to_host(decoded.scores)
        return [c[None] for c in coords], [s[None] for s in scores]

    def _generator(self) -> np.random.Generator:
        try:
            from torch.utils.data import get_worker_info

            info = get_worker_info()
        except ImportError:  # pragma: no cover - mmpose needs torch
            info = None
        key = None if info is None else (info.id, info.seed)
        if self._rng is None or self._rng[0] != key:
            entropy = [] if info is None else [info.seed]
            seed = (
                None if self.seed is None and info is None else [*([] if self.seed is None else [self.seed]), *entropy]
            )
            self._rng = (key, np.random.default_rng(seed))
        return self._rng[1]

    def __repr__(self) -> str:
        return f"LandmarkCodec({self.codec!r})"


def _visibility(keypoints: np.ndarray, keypoints_visible: Any) -> np.ndarray:
    """``(N, K)`` visibilities as mmpose's codecs read them (ones when None), checked."""
    if keypoints_visible is None:
        return np.ones(keypoints.shape[:2], dtype=np.float32)
    visible = check.real_host(_xp.to_host(keypoints_visible, "keypoints_visible"), "keypoints_visible", booleans=True)
    if visible.shape != keypoints.shape[:2]:
        raise ValueError(
            f"keypoints_visible must have shape (N, K) = {keypoints.shape[:2]}, one value per keypoint, got shape {visible.shape}"
        )
    return visible.astype(np.float32) if visible.dtype.kind in "biu" else visible.copy()


def _single_instance(codec: Any, points: np.ndarray) -> None:
    if points.shape[0] != 1:
        raise SingleInstanceError(
            f"{type(codec).__name__} only support single-instance keypoint encoding (mmpose's rule), got N = {points.shape[0]}"
        )


def _keypoints(keypoints: Any) -> np.ndarray:
    points = check.real_host(_xp.to_host(keypoints, "keypoints"), "keypoints")
    if points.ndim != 3 or points.shape[-1] != 2:
        raise ValueError(f"keypoints must have shape (N, K, 2), got shape {points.shape}")
    return points.astype(np.float64)


def _marker_array(xp: Any, device: Any, dtype: Any, drop_in: _GaussianDropIn) -> tuple[Any]:
    """A drop-in's empty-map marker in ``dtype`` (per plan: ``_xp.constants``)."""
    return (xp.asarray(drop_in._marker(), dtype=dtype, device=device),)


class _GaussianDropIn(BaseKeypointCodec):
    """What mmpose's single-instance Gaussian heatmap codecs share: mmpose's weights and drawing
    rule, the library's Gaussian, and a decoder codec in image pixels (``self._codec``)."""

    # what mmpose's PackPoseInputs moves where (mmpose's class attributes)
    label_mapping_table: ClassVar[dict[str, str]] = dict(keypoint_weights="keypoint_weights")
    field_mapping_table: ClassVar[dict[str, str]] = dict(heatmaps="heatmaps")
    _codec: Codec
    _convention: Convention
    _integer_window: bool  # mmpose's window around int(x + 0.5) (else around x)
    _rounding: Literal["none", "nearest"]

    def encode(self, keypoints: np.ndarray, keypoints_visible: np.ndarray | None = None) -> dict:
        """``keypoints (1, K, 2)`` and optional ``keypoints_visible (1, K)`` -> ``heatmaps``
        ``(K, H, W)`` float32 and ``keypoint_weights`` ``(1, K)`` (see the class docstring)."""
        points = _keypoints(keypoints)
        _single_instance(self, points)
        visible = _visibility(points, keypoints_visible)
        size = self._codec._size
        w, h = size
        centre = image_to_heatmap(
            points, image_size=self._codec.image_size, heatmap_size=size, convention=self._convention
        )
        radius = 3 * float(self.sigma)
        finite = np.isfinite(centre).all(axis=-1)
        with np.errstate(invalid="ignore"):
            if self._integer_window:  # mmpose's integer window around int(x + 0.5)
                mu = np.trunc(np.where(finite[..., None], centre, 0) + 0.5)
                low, high = np.trunc(mu - radius), np.trunc(mu + radius + 1)
            else:
                low, high = centre - radius, centre + radius + 1
            overlaps = finite & (low[..., 0] < w) & (low[..., 1] < h) & (high[..., 0] >= 0) & (high[..., 1] >= 0)
        labelled = visible >= 0.5
        weights = np.where(finite & ~(labelled & ~overlaps), visible, 0).astype(visible.dtype)
        maps, _ = encode_gaussian(
            centre,
            heatmap_size=size,
            sigma=self.sigma,
            rounding=self._rounding,
            weights=labelled & overlaps,
            outside="draw",
        )
        return dict(heatmaps=maps[0].astype(np.float32), keypoint_weights=weights)

    def decode(self, encoded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One instance's ``(K, H, W)`` heatmaps -> ``keypoints (1, K, 2)`` in input-image pixels
        and ``scores (1, K)``; a map whose maximum is not positive gives mmpose's marker (its
        heatmap pixel ``(-1, -1)`` mapped to the image as mmpose maps it)."""
        maps = np.asarray(_xp.to_host(encoded, "encoded"))
        if maps.ndim != 3:
            raise ValueError(f"encoded must be one instance's heatmaps (K, H, W), got shape {maps.shape}")
        keypoints, scores = self.batch_decode(maps[None])
        return keypoints[0], scores[0]

    def batch_decode(self, batch_heatmaps: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """A batch ``(B, K, H, W)`` (NumPy or tensors, decoded on their device in one call) ->
        per-instance ``(1, K, 2)`` keypoints and ``(1, K)`` scores, as mmpose's heads take them."""
        maps = batch_heatmaps.detach() if hasattr(batch_heatmaps, "detach") else batch_heatmaps
        decoded = self._codec.decode(maps)
        if type(decoded.coords) is np.ndarray:  # one instance per call, from mmpose's heads: no lookups
            (marker,) = _xp.constants(np, "cpu", _marker_array, decoded.coords.dtype, self)
            coords = np.where(decoded.scores[..., None] > 0, decoded.coords, marker)
            return [c[None] for c in coords], [v[None] for v in decoded.scores]
        xp = _xp.namespace(heatmaps=maps)
        marker = xp.asarray(self._marker(), dtype=decoded.coords.dtype, device=_xp.device(decoded.coords))
        coords = xp.where(decoded.scores[..., None] > 0, decoded.coords, marker)
        coords, scores = _xp.to_host(coords), _xp.to_host(decoded.scores)
        return [c[None] for c in coords], [v[None] for v in scores]

    def _marker(self) -> np.ndarray:
        return -np.asarray(self.scale_factor, dtype=np.float64)


@CODECS.register_module()
class MSRAHeatmap(_GaussianDropIn):
    """mmpose 1.3.2's ``MSRAHeatmap``, same constructor, outputs and attributes, computed with
    this library's exact functions: ``type="landmark_codecs.MSRAHeatmap"`` in a config.

    ``unbiased=False`` (SimpleBaseline): the Gaussian centred on the nearest heatmap pixel,
    decoded by the argmax and the quarter shift (:func:`~landmark_codecs.decode_argmax`).
    ``unbiased=True`` (DARK): the sub-pixel Gaussian, decoded by
    :func:`~landmark_codecs.decode_dark` with ``kernel_size=blur_kernel_size``, which returns the
    keypoint from this target to float rounding, also at the border (mmpose's one Newton step on
    a blurred map, skipped near the border, is off by up to half the stride there).

    Where a trained checkpoint depends on it, this is mmpose's behaviour: image -> heatmap is
    ``x / stride`` (``convention="legacy"``); a keypoint whose 3-sigma window overlaps the map
    is drawn (the part on the map) with its visibility as weight, one whose window misses the
    map gets weight 0, and one of visibility below 0.5 gets no Gaussian and keeps its
    visibility as weight. The differences, measured in docs/mmpose.md: the Gaussian is not cut
    at 3 sigma; ``unbiased=False`` rounds the centre to the nearest pixel (mmpose's
    ``int(x + 0.5)`` truncates toward 0, off by one pixel for ``x`` in (-1.5, -0.5) heatmap px);
    the quarter shift also applies in the first and last rows and columns where a neighbour
    exists; a NaN keypoint gets weight 0 and no Gaussian (mmpose's is undefined).

    Args:
        input_size: ``(w, h)`` of the network input, image pixels.
        heatmap_size: ``(W, H)`` of the heatmaps.
        sigma: the Gaussian's standard deviation, heatmap pixels.
        unbiased: DARK's target and decoder instead of SimpleBaseline's.
        blur_kernel_size: odd side of DARK's blur kernel (``unbiased=True`` only).

    Convention:
        Keypoints are ``(x, y)`` in input-image pixels, integers at pixel centres; heatmaps
        ``(K, H, W)``; ``encode`` takes one instance ``(1, K, 2)``, as mmpose's does.

    >>> codec = MSRAHeatmap(input_size=(192, 256), heatmap_size=(48, 64), sigma=2.0, unbiased=True)
    >>> encoded = codec.encode(np.array([[[50.3, 100.6]]]))
    >>> encoded["heatmaps"].shape, encoded["keypoint_weights"].tolist()
    ((1, 64, 48), [[1.0]])
    >>> [round(v, 3) for v in codec.decode(encoded["heatmaps"])[0][0, 0].tolist()]
    [50.3, 100.6]
    """

    def __init__(
        self,
        input_size: tuple[int, int],
        heatmap_size: tuple[int, int],
        sigma: float,
        unbiased: bool = False,
        blur_kernel_size: int = 11,
    ) -> None:
        super().__init__()
        self.input_size, self.heatmap_size, self.sigma = input_size, heatmap_size, sigma
        self.unbiased = check.boolean(unbiased, "unbiased")
        self.blur_kernel_size = blur_kernel_size
        options: dict[str, Any] = {"sigma": sigma}
        if unbiased:
            options["kernel_size"] = blur_kernel_size
        else:
            options["rounding"] = "nearest"
        self._convention, self._integer_window = "legacy", not unbiased
        self._rounding = "none" if unbiased else "nearest"
        self._codec = get_codec(
            "dark" if unbiased else "quarter",
            image_size=input_size,
            heatmap_size=heatmap_size,
            convention="legacy",
            on_outside="ignore",
            **options,
        )
        self.scale_factor = (np.array(input_size) / np.array(heatmap_size)).astype(np.float32)

    def __repr__(self) -> str:
        return (
            f"landmark_codecs.MSRAHeatmap(input_size={self.input_size}, heatmap_size={self.heatmap_size}, "
            f"sigma={self.sigma}, unbiased={self.unbiased}, blur_kernel_size={self.blur_kernel_size})"
        )


@CODECS.register_module()
class UDPHeatmap(_GaussianDropIn):
    """mmpose 1.3.2's ``UDPHeatmap`` (both heatmap types), same constructor, outputs and
    attributes, computed with the library's exact functions:
    ``type="landmark_codecs.UDPHeatmap"`` in a config.

    The target is UDP's sub-pixel Gaussian in the corner-aligned convention (image -> heatmap
    ``x (W - 1) / (w - 1)``, :func:`~landmark_codecs.encode_udp`'s), decoded by
    :func:`~landmark_codecs.decode_udp` with ``kernel_size=blur_kernel_size``, which maps back with
    the same scale: the keypoint to float rounding. mmpose's decode maps back with
    ``w / (W - 1)``, every ``x`` too large by ``x / (w - 1)`` (up to 1 px), and its refinement
    near the border adds more (docs/mmpose.md: 0.85 px on average, up to 5 px, on its own
    target). Weights and drawing follow mmpose's rules
    (the 3-sigma window around ``int(x + 0.5)``, visibility below 0.5), as for
    :class:`MSRAHeatmap`; the Gaussian is not cut at 3 sigma.

    ``heatmap_type="combined"`` (UDP's offset target, ``(3 K, H, W)``): per keypoint a disk of
    radius ``radius_factor * max(W, H)`` heatmap px around it and the maps
    ``(x - j) / radius``, ``(y - i) / radius``, as mmpose's
    (:func:`~landmark_codecs.encode_udp_combined` with ``outside="draw"``); decoded as mmpose's
    (the argmax of the disk blurred with OpenCV's ``2 * blur_kernel_size + 1`` Gaussian, plus the
    offsets there: :func:`~landmark_codecs.decode_udp_combined`, on the batch's device) but
    mapped back with UDP's own scale: the keypoint to float32 rounding, where mmpose's
    ``w / (W - 1)`` is off by ``x / (w - 1)`` (docs/mmpose.md). A keypoint of visibility below
    0.5 gets zero maps and keeps its visibility as weight; other weights are the visibility,
    whatever the position (mmpose's rules); a NaN keypoint gets weight 0 and zero maps.

    Args:
        input_size: ``(w, h)`` of the network input, image pixels.
        heatmap_size: ``(W, H)`` of the heatmaps.
        heatmap_type: ``"gaussian"`` or ``"combined"``.
        sigma: the Gaussian's standard deviation, heatmap pixels.
        radius_factor: the disk's radius over ``max(W, H)``, for ``"combined"``.
        blur_kernel_size: odd side of the decoder's blur kernel (``"combined"``: its half side).

    Convention:
        Keypoints are ``(x, y)`` in input-image pixels, integers at pixel centres; heatmaps
        ``(K, H, W)``; ``encode`` takes one instance ``(1, K, 2)``, as mmpose's does.

    >>> codec = UDPHeatmap(input_size=(192, 256), heatmap_size=(48, 64))
    >>> encoded = codec.encode(np.array([[[190.3, 100.6]]]))
    >>> [round(v, 3) for v in codec.decode(encoded["heatmaps"])[0][0, 0].tolist()]
    [190.3, 100.6]
    """

    def __init__(
        self,
        input_size: tuple[int, int],
        heatmap_size: tuple[int, int],
        heatmap_type: str = "gaussian",
        sigma: float = 2.0,
        radius_factor: float = 0.0546875,
        blur_kernel_size: int = 11,
    ) -> None:
        super().__init__()
        self.input_size, self.heatmap_size, self.sigma = input_size, heatmap_size, sigma
        self.radius_factor, self.heatmap_type, self.blur_kernel_size = radius_factor, heatmap_type, blur_kernel_size
        if heatmap_type not in ("gaussian", "combined"):
            raise ValueError(
                f"{type(self).__name__} got invalid `heatmap_type` value {heatmap_type!r}. Should be one of "
                '{"gaussian", "combined"}'
            )
        if heatmap_type == "combined":
            self._radius = check.positive(radius_factor, "radius_factor") * max(
                check.size(heatmap_size, "heatmap_size")
            )
        self._convention, self._integer_window, self._rounding = "udp", True, "none"
        self._codec = get_codec(
            "udp",
            image_size=input_size,
            heatmap_size=heatmap_size,
            on_outside="ignore",
            sigma=sigma,
            kernel_size=blur_kernel_size,
        )
        self.scale_factor = ((np.array(input_size) - 1) / (np.array(heatmap_size) - 1)).astype(np.float32)

    def encode(self, keypoints: np.ndarray, keypoints_visible: np.ndarray | None = None) -> dict:
        """``keypoints (1, K, 2)`` -> ``heatmaps`` (``(K, H, W)``, or ``(3 K, H, W)`` for
        ``"combined"``) and ``keypoint_weights (1, K)``."""
        if self.heatmap_type == "gaussian":
            return super().encode(keypoints, keypoints_visible)
        points = _keypoints(keypoints)
        _single_instance(self, points)
        visible = _visibility(points, keypoints_visible)
        w, h = self._codec._size
        t = encode_udp_combined(
            points,
            image_size=self._codec.image_size,
            heatmap_size=(w, h),
            radius=self._radius,
            weights=visible >= 0.5,  # mmpose draws nothing below 0.5 but keeps the visibility as weight
            outside="draw",
        )
        maps = np.concatenate([t.heatmaps[0, :, None], t.offsets[0]], axis=1)  # (K, 3, H, W): disk, x, y
        finite = np.isfinite(points[0]).all(axis=-1)
        weights = np.where(finite, visible[0], 0)[None].astype(visible.dtype)
        return dict(heatmaps=maps.reshape(-1, h, w).astype(np.float32), keypoint_weights=weights)

    def decode(self, encoded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One instance's heatmaps (``(K, H, W)``; ``(3 K, H, W)`` for ``"combined"``) ->
        ``keypoints (1, K, 2)`` in input-image pixels and ``scores (1, K)``."""
        if self.heatmap_type == "gaussian":
            return super().decode(encoded)
        maps = np.asarray(_xp.to_host(encoded, "encoded"))
        w, h = self._codec._size
        if maps.ndim != 3 or maps.shape[0] % 3 or tuple(maps.shape[1:]) != (h, w):
            raise ValueError(
                f"encoded must be one instance's combined heatmaps (3 K, H, W) = (3 K, {h}, {w}), got shape {maps.shape}"
            )
        keypoints, scores = self.batch_decode(maps[None])
        return keypoints[0], scores[0]

    def batch_decode(self, batch_heatmaps: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """As ``decode``, per instance of a batch ``(B, K, H, W)`` (``(B, 3 K, H, W)`` for
        ``"combined"``), decoded on its device in one call."""
        if self.heatmap_type == "gaussian":
            return super().batch_decode(batch_heatmaps)
        maps = batch_heatmaps.detach() if hasattr(batch_heatmaps, "detach") else batch_heatmaps
        xp = _xp.namespace(batch_heatmaps=maps)
        w, h = self._codec._size
        if maps.ndim != 4 or maps.shape[1] % 3 or tuple(maps.shape[2:]) != (h, w):
            raise ValueError(
                f"batch_heatmaps must be combined heatmaps (B, 3 K, H, W) = (B, 3 K, {h}, {w}), got shape {tuple(maps.shape)}"
            )
        maps = xp.reshape(maps, (maps.shape[0], maps.shape[1] // 3, 3, h, w))
        decoded = decode_udp_combined(
            maps[:, :, 0, ...],
            maps[:, :, 1:, ...],
            image_size=self._codec.image_size,
            radius=self._radius,
            kernel_size=2 * self.blur_kernel_size + 1,
        )
        marker = xp.asarray(self._marker(), dtype=decoded.coords.dtype, device=_xp.device(decoded.coords))
        coords = xp.where(decoded.scores[..., None] > 0, decoded.coords, marker)
        coords, scores = _xp.to_host(coords), _xp.to_host(decoded.scores)
        return [c[None] for c in coords], [v[None] for v in scores]

    def _marker(self) -> np.ndarray:
        w, h = self._codec._size
        return -np.asarray(self._codec.image_size, dtype=np.float64) / [w - 1, h - 1]

    def __repr__(self) -> str:
        return (
            f"landmark_codecs.UDPHeatmap(input_size={self.input_size}, heatmap_size={self.heatmap_size}, "
            f"heatmap_type={self.heatmap_type!r}, sigma={self.sigma}, blur_kernel_size={self.blur_kernel_size})"
        )


@CODECS.register_module()
class SimCCLabel(BaseKeypointCodec):
    """mmpose 1.3.2's ``SimCCLabel``, same constructor, outputs and attributes, computed with
    this library's exact functions: ``type="landmark_codecs.SimCCLabel"`` in a config.

    ``smoothing_type="gaussian"``: per axis, a Gaussian of ``sigma`` bins, scaled by
    ``1 / (sigma sqrt(2 pi))`` with ``normalize=True`` as mmpose's. With ``use_dark=True`` it is
    centred on the exact bin coordinate ``x * simcc_split_ratio`` (mmpose centres it on that
    coordinate rounded to a bin, up to half a bin off: 0.25 px at ratio 2), and
    :func:`~landmark_codecs.decode_simcc`'s 1-D DARK returns the keypoint from it to float
    rounding (mmpose's refinement of its own labels is off by up to 0.24 px, docs/mmpose.md).
    With ``use_dark=False`` the argmax reads bins only, and the label is mmpose's, on the rounded
    bin: a flip test's average then keeps both peaks on bins (a sub-bin label put its maximum up
    to a bin off at ratio 2; docs/mmpose.md's flip table). ``smoothing_type="standard"``:
    one-hot at the nearest bin with ``label_smooth_weight`` spread over the others, mmpose's
    label, decoded by the argmax.

    Where a trained checkpoint depends on it, this is mmpose's behaviour: image -> bins is
    ``x * simcc_split_ratio`` (``convention="legacy"``); a keypoint whose 3-sigma window around
    its rounded bin overlaps the bins (``"standard"``: whose bin is on the axis) is drawn, the
    part on the axis, with its visibility as weight, one whose window misses gets weight 0, one
    of visibility below 0.5 gets zero labels and keeps its visibility as weight; a decoded
    keypoint whose score is not positive is mmpose's marker ``-1 / simcc_split_ratio``. A NaN
    keypoint gets weight 0 and zero labels (mmpose's is undefined).

    Args:
        input_size: ``(w, h)`` of the network input, image pixels.
        smoothing_type: ``"gaussian"`` or ``"standard"``.
        sigma: the Gaussian's standard deviation in bins, one or an ``(x, y)`` pair.
        simcc_split_ratio: bins per image pixel.
        label_smooth_weight: for ``"standard"``: the weight spread over the other bins, in [0, 1].
        normalize: divide the Gaussian labels by ``sigma sqrt(2 pi)`` (mmpose's normalization).
        use_dark: refine the argmax with 1-D DARK.
        decode_visibility: ``decode`` also returns a visibility: per axis the maximum of
            ``softmax(labels * decode_beta * sigma)``, the smaller of the two (mmpose's), in the
            scores' shape ``(N, K)`` (mmpose's is ``(K,)`` for one instance's 2-D labels, which
            its heads' ``InstanceData`` refuses beside ``(1, K, 2)`` keypoints).
        decode_beta: the inverse temperature of that softmax.

    Convention:
        Keypoints are ``(x, y)`` in input-image pixels, integers at pixel centres; labels
        ``(N, K, w * r)`` and ``(N, K, h * r)``.

    >>> codec = SimCCLabel(input_size=(192, 256), sigma=6.0, use_dark=True)
    >>> encoded = codec.encode(np.array([[[50.3, 100.6]]]))
    >>> encoded["keypoint_x_labels"].shape, encoded["keypoint_weights"].tolist()
    ((1, 1, 384), [[1.0]])
    >>> [round(v, 3) for v in codec.decode(encoded["keypoint_x_labels"], encoded["keypoint_y_labels"])[0][0, 0].tolist()]
    [50.3, 100.6]
    """

    label_mapping_table: ClassVar[dict[str, str]] = dict(
        keypoint_x_labels="keypoint_x_labels",
        keypoint_y_labels="keypoint_y_labels",
        keypoint_weights="keypoint_weights",
    )

    def __init__(
        self,
        input_size: tuple[int, int],
        smoothing_type: str = "gaussian",
        sigma: float | tuple[float, float] = 6.0,
        simcc_split_ratio: float = 2.0,
        label_smooth_weight: float = 0.0,
        normalize: bool = True,
        use_dark: bool = False,
        decode_visibility: bool = False,
        decode_beta: float = 150.0,
    ) -> None:
        super().__init__()
        self.input_size, self.smoothing_type, self.simcc_split_ratio = input_size, smoothing_type, simcc_split_ratio
        self.label_smooth_weight, self.normalize = label_smooth_weight, check.boolean(normalize, "normalize")
        self.use_dark = check.boolean(use_dark, "use_dark")
        self.decode_visibility = check.boolean(decode_visibility, "decode_visibility")
        self.decode_beta = check.positive(decode_beta, "decode_beta")
        if smoothing_type not in ("gaussian", "standard"):  # mmpose's errors, its tests match them
            raise ValueError(
                f"{type(self).__name__} got invalid `smoothing_type` value {smoothing_type!r}. Should be one of "
                '{"gaussian", "standard"}'
            )
        if smoothing_type == "gaussian" and label_smooth_weight > 0:
            raise ValueError("Attribute `label_smooth_weight` is only used for `standard` mode.")
        if not 0.0 <= check.finite(label_smooth_weight, "label_smooth_weight") <= 1.0:
            raise ValueError(f"`label_smooth_weight` should be in range [0, 1], got {label_smooth_weight!r}")
        sigmas = check.axis_sigmas(sigma)
        self.sigma = np.array(sigmas)  # mmpose's attribute, read by SimCCHead(output_heatmaps=True)
        self._codec = get_codec(
            "simcc",
            image_size=input_size,
            sigma=sigmas,
            split_ratio=simcc_split_ratio,
            convention="legacy",
            smoothing=smoothing_type,
            label_smooth_weight=label_smooth_weight,
            refine="dark" if use_dark else "none",
            on_outside="ignore",
        )

    def encode(self, keypoints: np.ndarray, keypoints_visible: np.ndarray | None = None) -> dict:
        """``keypoints (N, K, 2)`` and optional ``keypoints_visible (N, K)`` ->
        ``keypoint_x_labels (N, K, w * r)``, ``keypoint_y_labels (N, K, h * r)`` float32 and
        ``keypoint_weights (N, K)`` (see the class docstring)."""
        points = _keypoints(keypoints)
        visible = _visibility(points, keypoints_visible)
        bins = self._codec._size
        centre = points * self.simcc_split_ratio  # the legacy convention: bin = x * r
        finite = np.asarray(np.isfinite(centre).all(axis=-1))
        with np.errstate(invalid="ignore"):
            mu = np.around(np.where(finite[..., None], centre, 0))  # mmpose's rounded bin, for its rules
            if self.smoothing_type == "gaussian":
                radius = 3 * self.sigma
                low, high = mu - radius, mu + radius + 1
                overlaps = (low[..., 0] < bins[0]) & (low[..., 1] < bins[1]) & (high[..., 0] >= 0) & (high[..., 1] >= 0)
            else:
                overlaps = (mu >= 0).all(axis=-1) & (mu[..., 0] < bins[0]) & (mu[..., 1] < bins[1])
        overlaps &= finite
        labelled = visible >= 0.5
        weights = np.where(finite & ~(labelled & ~overlaps), visible, 0).astype(visible.dtype)
        draw = (labelled & overlaps)[..., None]
        # Without DARK the decode reads bins, not sub-bin positions: the label is mmpose's, on the
        # rounded bin, so that a flip test's average keeps its two peaks on bins (docs/mmpose.md)
        safe = np.where(draw, centre if self.use_dark else mu, 0.0)
        labels = []
        for axis in (0, 1):
            if self.smoothing_type == "gaussian":
                label = _common.gaussian_profile(np, safe[..., axis], bins[axis], float(self.sigma[axis]))
                if self.normalize:
                    label = label / (self.sigma[axis] * np.sqrt(2 * np.pi))
            else:
                label = _standard_label(np, safe[..., axis], bins[axis], float(self.label_smooth_weight))
            labels.append(np.where(draw, label, 0.0).astype(np.float32))
        return dict(keypoint_x_labels=labels[0], keypoint_y_labels=labels[1], keypoint_weights=weights)

    def decode(self, simcc_x: np.ndarray, simcc_y: np.ndarray) -> tuple[np.ndarray, Any]:
        """Labels ``(K, w * r)`` and ``(K, h * r)`` (or with a leading ``N``) ->
        ``keypoints (N, K, 2)`` in input-image pixels and ``scores (N, K)`` (with
        ``decode_visibility``: ``(scores, visibility)``), ``N = 1`` for 2-D labels, as mmpose's."""
        x = np.asarray(_xp.to_host(simcc_x, "simcc_x"))
        y = np.asarray(_xp.to_host(simcc_y, "simcc_y"))
        if x.ndim not in (2, 3) or x.ndim != y.ndim:
            raise ValueError(
                f"simcc_x and simcc_y must both be (K, bins) or (N, K, bins), got shapes {x.shape} and {y.shape}"
            )
        if x.ndim == 2:
            x, y = x[None], y[None]
        decoded = self._codec.decode(x, y)
        marker = -1.0 / self.simcc_split_ratio
        keypoints = decoded.coords  # a new array: marked in place
        keypoints[~(decoded.scores > 0)] = marker
        if not self.decode_visibility:
            return keypoints, decoded.scores
        visibility = simcc_visibility(x, y, sigma=tuple(self.sigma.tolist()), beta=self.decode_beta)  # (N, K)
        return keypoints, (decoded.scores, visibility)

    def __repr__(self) -> str:
        return (
            f"landmark_codecs.SimCCLabel(input_size={self.input_size}, smoothing_type={self.smoothing_type!r}, "
            f"sigma={tuple(self.sigma.tolist())}, simcc_split_ratio={self.simcc_split_ratio}, "
            f"label_smooth_weight={self.label_smooth_weight}, normalize={self.normalize}, use_dark={self.use_dark}, "
            f"decode_visibility={self.decode_visibility}, decode_beta={self.decode_beta})"
        )


@CODECS.register_module()
class RegressionLabel(BaseKeypointCodec):
    """mmpose 1.3.2's ``RegressionLabel``: ``type="landmark_codecs.RegressionLabel"`` in a config.

    ``encode``: ``keypoint_labels = keypoints / (w, h)`` (float32), weight 1 where the keypoint
    lies in ``[0, w - 1] x [0, h - 1]`` and its visibility exceeds 0.5, else 0 (mmpose's rules,
    which a trained checkpoint depends on; NaN keypoints get weight 0). ``decode``:
    ``(N, K, 2)`` labels times ``(w, h)`` with scores 1, or ``(N, K, 4)`` labels with a predicted
    sigma (RLE's head) scored ``mean(1 - sigma)`` over the two axes, as mmpose's. The mapping is a
    scaling: the round trip is exact to float32 rounding. Unlike mmpose's, bad input gets an
    error naming the argument and ``(K, D)`` labels decode as one instance.

    Args:
        input_size: ``(w, h)`` of the network input, image pixels.

    Convention:
        Keypoints ``(x, y)`` in input-image pixels; labels in units of the input's width and
        height (``x / w``, ``y / h``).

    >>> codec = RegressionLabel(input_size=(192, 256))
    >>> encoded = codec.encode(np.array([[[48.0, 64.0]]]))
    >>> encoded["keypoint_labels"].tolist(), codec.decode(encoded["keypoint_labels"])[0].tolist()
    ([[[0.25, 0.25]]], [[[48.0, 64.0]]])
    """

    label_mapping_table: ClassVar[dict[str, str]] = dict(
        keypoint_labels="keypoint_labels", keypoint_weights="keypoint_weights"
    )

    def __init__(self, input_size: tuple[int, int]) -> None:
        super().__init__()
        self.input_size = input_size
        self._size = np.array(check.size(input_size, "input_size"), dtype=np.float64)

    def encode(self, keypoints: np.ndarray, keypoints_visible: np.ndarray | None = None) -> dict:
        """``keypoints (N, K, 2)``, optional ``keypoints_visible (N, K)`` -> ``keypoint_labels``
        ``(N, K, 2)`` and ``keypoint_weights`` ``(N, K)``, float32."""
        points = _keypoints(keypoints)
        visible = _visibility(points, keypoints_visible)
        with np.errstate(invalid="ignore"):
            valid = ((points >= 0) & (points <= self._size - 1)).all(axis=-1) & (visible > 0.5)
        return dict(
            keypoint_labels=(points / self._size).astype(np.float32),
            keypoint_weights=np.where(valid, 1.0, 0.0).astype(np.float32),
        )

    def decode(self, encoded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(N, K, 2)`` labels, or ``(N, K, 4)`` with RLE's sigma (``(K, D)``: one instance) ->
        ``keypoints (N, K, 2)`` in input-image pixels and ``scores (N, K)``."""
        labels = check.real_host(_xp.to_host(encoded, "encoded"), "encoded")
        if labels.ndim == 2:
            labels = labels[None]
        if labels.ndim != 3 or labels.shape[-1] not in (2, 4):
            raise ValueError(
                "encoded must have shape (N, K, 2), or (N, K, 4) with the predicted sigma (RLE): "
                f"Keypoint dimension should be 2 or 4 (with sigma), got shape {labels.shape}"
            )
        if labels.shape[-1] == 2:
            scores = np.ones(labels.shape[:2], dtype=np.float32)
        else:
            scores = (1 - labels[..., 2:4]).mean(axis=-1)
        return labels[..., :2] * self._size, scores

    def __repr__(self) -> str:
        return f"landmark_codecs.RegressionLabel(input_size={self.input_size})"


@CODECS.register_module()
class IntegralRegressionLabel(BaseKeypointCodec):
    """mmpose 1.3.2's ``IntegralRegressionLabel`` (integral regression, DSNT heads):
    ``type="landmark_codecs.IntegralRegressionLabel"`` in a config.

    ``encode`` returns :class:`MSRAHeatmap`'s ``heatmaps`` (this library's, with its rules and
    differences) divided by their sum with ``normalize=True`` (mmpose adds 1e-24 to the sum, so
    an empty map stays 0; so does this), and :class:`RegressionLabel`'s ``keypoint_labels`` and
    ``keypoint_weights``; ``decode`` is :class:`RegressionLabel`'s. The normalized map's mean is
    the keypoint away from the border, as mmpose's; near the border it is pulled inward (the
    map is cut by the edge): for a target whose mean is the keypoint everywhere, use
    ``LandmarkCodec(name="soft_argmax")`` (:func:`~landmark_codecs.encode_soft_argmax`).

    Args:
        input_size: ``(w, h)`` of the network input, image pixels.
        heatmap_size: ``(W, H)`` of the heatmaps.
        sigma: the Gaussian's standard deviation, heatmap pixels.
        unbiased: DARK's sub-pixel Gaussian instead of the one on the nearest pixel.
        blur_kernel_size: as :class:`MSRAHeatmap`'s.
        normalize: divide each map by its sum.

    >>> codec = IntegralRegressionLabel(input_size=(192, 256), heatmap_size=(48, 64), sigma=2.0)
    >>> encoded = codec.encode(np.array([[[50.0, 100.0]]]))
    >>> round(float(encoded["heatmaps"].sum()), 6), encoded["keypoint_labels"].shape
    (1.0, (1, 1, 2))
    """

    label_mapping_table: ClassVar[dict[str, str]] = dict(
        keypoint_labels="keypoint_labels", keypoint_weights="keypoint_weights"
    )
    field_mapping_table: ClassVar[dict[str, str]] = dict(heatmaps="heatmaps")

    def __init__(
        self,
        input_size: tuple[int, int],
        heatmap_size: tuple[int, int],
        sigma: float,
        unbiased: bool = False,
        blur_kernel_size: int = 11,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        self.heatmap_codec = MSRAHeatmap(input_size, heatmap_size, sigma, unbiased, blur_kernel_size)
        self.keypoint_codec = RegressionLabel(input_size)
        self.normalize = check.boolean(normalize, "normalize")

    def encode(self, keypoints: np.ndarray, keypoints_visible: np.ndarray | None = None) -> dict:
        """``keypoints (1, K, 2)`` -> ``heatmaps (K, H, W)``, ``keypoint_labels (1, K, 2)``,
        ``keypoint_weights (1, K)``."""
        heatmaps = self.heatmap_codec.encode(keypoints, keypoints_visible)["heatmaps"]
        labels = self.keypoint_codec.encode(keypoints, keypoints_visible)
        if self.normalize:
            heatmaps = heatmaps / (heatmaps.sum(axis=(-1, -2), keepdims=True) + np.float32(1e-24))
        return dict(
            keypoint_labels=labels["keypoint_labels"], heatmaps=heatmaps, keypoint_weights=labels["keypoint_weights"]
        )

    def decode(self, encoded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`RegressionLabel.decode`."""
        return self.keypoint_codec.decode(encoded)

    def __repr__(self) -> str:
        h = self.heatmap_codec
        return (
            f"landmark_codecs.IntegralRegressionLabel(input_size={h.input_size}, heatmap_size={h.heatmap_size}, "
            f"sigma={h.sigma}, unbiased={h.unbiased}, blur_kernel_size={h.blur_kernel_size}, normalize={self.normalize})"
        )


@CODECS.register_module()
class MegviiHeatmap(BaseKeypointCodec):
    """mmpose 1.3.2's ``MegviiHeatmap`` (MSPN, RSN): ``type="landmark_codecs.MegviiHeatmap"``.

    The target is mmpose's: the heatmap pixel ``trunc(x / stride)`` holding the keypoint (a
    keypoint anywhere in that pixel's ``stride``-wide cell gets the same map), blurred by a
    Gaussian of ``kernel_size`` (its sigma ``0.3 ((kernel_size - 1) / 2 - 1) + 0.8``, OpenCV's),
    peak 255: this library's Gaussian on that pixel (mmpose's is cut at the kernel and, within
    half a kernel of the border, adds OpenCV's reflection of itself). The decode is
    :func:`~landmark_codecs.decode_dark` with that sigma and kernel, then the cell's centre
    (``+ 0.5`` heatmap px) times the stride: on its own target, the centre of the keypoint's cell
    (within half a stride of the keypoint, the target's quantization, unbiased for a keypoint
    uniform in its cell); mmpose's quarter shift adds the half pixel only away from the border (in
    the first and last two rows and columns it is half a stride off) and reads OpenCV's
    reflection as a slope (docs/mmpose.md). Scores are mmpose's,
    ``max / 255 + 0.5``; a map whose maximum is not positive gives mmpose's marker ``-stride``.
    Weights follow mmpose's rules: a visibility below 0.5 draws nothing and is kept as the
    weight, a pixel outside the map gets weight 0, a NaN keypoint too.

    Args:
        input_size: ``(w, h)`` of the network input, image pixels.
        heatmap_size: ``(W, H)`` of the heatmaps.
        kernel_size: odd side of the Gaussian kernel, heatmap pixels.

    >>> codec = MegviiHeatmap(input_size=(192, 256), heatmap_size=(48, 64), kernel_size=11)
    >>> encoded = codec.encode(np.array([[[50.3, 100.6]]]))
    >>> codec.decode(encoded["heatmaps"])[0].tolist()  # the centre of the 4-px cell holding it
    [[[50.0, 102.0]]]
    """

    label_mapping_table: ClassVar[dict[str, str]] = dict(keypoint_weights="keypoint_weights")
    field_mapping_table: ClassVar[dict[str, str]] = dict(heatmaps="heatmaps")

    def __init__(self, input_size: tuple[int, int], heatmap_size: tuple[int, int], kernel_size: int) -> None:
        super().__init__()
        self.input_size, self.heatmap_size, self.kernel_size = input_size, heatmap_size, kernel_size
        self._image, self._size = check.size(input_size, "input_size"), check.size(heatmap_size, "heatmap_size")
        check.odd_size(kernel_size, "kernel_size", "the kernel is centred on a pixel")
        self.scale_factor = (np.array(input_size) / heatmap_size).astype(np.float32)
        self._sigma = 0.3 * ((kernel_size - 1) * 0.5 - 1) + 0.8  # OpenCV's sigma for a kernel size

    def encode(self, keypoints: np.ndarray, keypoints_visible: np.ndarray | None = None) -> dict:
        """``keypoints (1, K, 2)`` -> ``heatmaps (K, H, W)`` float32 (peak 255) and
        ``keypoint_weights (1, K)``."""
        points = _keypoints(keypoints)
        _single_instance(self, points)
        visible = _visibility(points, keypoints_visible)
        w, h = self._size
        finite = np.asarray(np.isfinite(points).all(axis=-1))
        cell = np.trunc(np.where(finite[..., None], points, 0) / self.scale_factor)  # mmpose's int64 cast
        inside = finite & (cell[..., 0] >= 0) & (cell[..., 0] < w) & (cell[..., 1] >= 0) & (cell[..., 1] < h)
        labelled = visible >= 0.5
        weights = np.where(finite & ~(labelled & ~inside), visible, 0).astype(visible.dtype)
        maps, _ = encode_gaussian(cell, heatmap_size=self._size, sigma=self._sigma, weights=labelled & inside)
        return dict(heatmaps=(maps[0] * 255).astype(np.float32), keypoint_weights=weights)

    def decode(self, encoded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One instance's ``(K, H, W)`` heatmaps -> ``keypoints (1, K, 2)`` in input-image pixels
        and ``scores (1, K)``."""
        maps = np.asarray(_xp.to_host(encoded, "encoded"))
        if maps.ndim != 3 or tuple(maps.shape[1:]) != (self._size[1], self._size[0]):
            raise ValueError(
                f"encoded must be one instance's heatmaps (K, H, W) = (K, {self._size[1]}, {self._size[0]}), got shape {maps.shape}"
            )
        coords, peak = decode_dark(maps[None], sigma=self._sigma, kernel_size=self.kernel_size)
        keypoints = np.where(peak[..., None] > 0, (coords + 0.5) * self.scale_factor, -self.scale_factor)
        return keypoints, peak / 255.0 + 0.5

    def __repr__(self) -> str:
        return (
            f"landmark_codecs.MegviiHeatmap(input_size={self.input_size}, heatmap_size={self.heatmap_size}, "
            f"kernel_size={self.kernel_size})"
        )
