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
from typing import Any

import numpy as np
from mmpose.codecs.base import BaseKeypointCodec
from mmpose.registry import KEYPOINT_CODECS

from . import _validation as check
from . import _xp
from .codecs import Codec, PIPNetCodec, SimCCCodec, get_codec

__all__ = ["LandmarkCodec"]

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
