"""The mmpose plugin: ``import landmark_codecs.mmpose`` registers ``LandmarkCodec`` in mmpose's
``KEYPOINT_CODECS`` registry, so a config builds any of our codecs by name::

    codec = dict(type="LandmarkCodec", name="h3r", input_size=(256, 256), heatmap_size=(64, 64), expected=True)

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
  returns ``(keypoints (1, K, 2), scores (1, K))`` in input-image pixels;
- ``batch_decode(*outputs)`` on a batch of tensors ``(B, K, H, W)`` decodes them in one call on
  their device and returns per-instance lists, as mmpose's heads expect.

Convention:
    mmpose's keypoints are ``(x, y)`` in input-image pixels with integers at pixel centres, as
    ours; the codec maps them to its heatmap with its ``convention`` (``"pixel_center"`` by
    default, where mmpose's MSRA and DARK codecs divide by the stride: ``convention="legacy"``
    reproduces that).

Randomness: mmpose's ``encode`` takes no generator, so a sampling codec (``"h3r"`` unless
``expected=True``) draws from a NumPy generator the plugin owns: seeded by ``seed`` (or from
the operating system's entropy when ``seed`` is None) and, inside DataLoader workers, by the
worker's seed too, so workers never repeat one another's noise.

Importing this module needs mmpose (``pip install "landmark_codecs[mmpose]"``); nothing else in
the package imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
from mmengine.registry import Registry
from mmpose.codecs.base import BaseKeypointCodec
from mmpose.registry import KEYPOINT_CODECS

from . import _validation as check
from . import _xp
from .codecs import Codec, PIPNetCodec, SimCCCodec, get_codec
from .coords import Convention, image_to_heatmap
from .gaussian import encode_gaussian

__all__ = ["CODECS", "LandmarkCodec", "MSRAHeatmap", "SingleInstanceError", "UDPHeatmap"]

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
        seed: seeds the generator of a sampling codec (see the module docstring).
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
        """Targets for ``(N, K, 2)`` keypoints in input-image pixels (see the module docstring)."""
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
        encoded = self.codec.encode(keypoints, weights=weights, rng=self._generator() if self._samples else None)
        outputs = encoded.outputs
        if self._single_instance:
            outputs = tuple(o[0] for o in outputs)  # mmpose's heatmap heads take (K, H, W) per sample
        return {**dict(zip(self.output_keys, outputs)), "keypoint_weights": encoded.weights}

    def decode(self, *encoded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One instance's outputs (``(K, H, W)``, or SimCC's ``(K, W*r)`` and ``(K, H*r)``) ->
        ``(keypoints (1, K, 2), scores (1, K))`` in input-image pixels."""
        decoded = self.codec.decode(*(np.asarray(_xp.to_host(e, "encoded"))[None] for e in encoded))
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


def _keypoints(keypoints: Any) -> np.ndarray:
    points = check.real_host(_xp.to_host(keypoints, "keypoints"), "keypoints")
    if points.ndim != 3 or points.shape[-1] != 2:
        raise ValueError(f"keypoints must have shape (N, K, 2), got shape {points.shape}")
    return points.astype(np.float64)


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
        if points.shape[0] != 1:
            raise SingleInstanceError(
                f"{type(self).__name__} only support single-instance keypoint encoding (mmpose's rule), got N = {points.shape[0]}"
            )
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
    """mmpose 1.3.2's ``UDPHeatmap`` (``heatmap_type="gaussian"``), same constructor, outputs
    and attributes, computed with the library's exact functions:
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

    ``heatmap_type="combined"`` (the offset maps) has no drop-in yet: a ValueError says so.

    Args:
        input_size: ``(w, h)`` of the network input, image pixels.
        heatmap_size: ``(W, H)`` of the heatmaps.
        heatmap_type: ``"gaussian"``.
        sigma: the Gaussian's standard deviation, heatmap pixels.
        radius_factor: mmpose's offset radius for ``"combined"`` (kept as an attribute).
        blur_kernel_size: odd side of the decoder's blur kernel.

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
            raise ValueError(
                'landmark_codecs.UDPHeatmap has no heatmap_type="combined" yet (the offset maps): use mmpose\'s '
                'UDPHeatmap for it, or heatmap_type="gaussian"'
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

    def _marker(self) -> np.ndarray:
        w, h = self._codec._size
        return -np.asarray(self._codec.image_size, dtype=np.float64) / [w - 1, h - 1]

    def __repr__(self) -> str:
        return (
            f"landmark_codecs.UDPHeatmap(input_size={self.input_size}, heatmap_size={self.heatmap_size}, "
            f"heatmap_type={self.heatmap_type!r}, sigma={self.sigma}, blur_kernel_size={self.blur_kernel_size})"
        )
