"""landmark_codecs: exact, fast, tested landmark coding primitives on every array library.

Encoders turn ``(..., K, 2)`` landmark coordinates into ``(..., K, H, W)`` training targets
(or regression labels); decoders (argmax, H3R, soft-argmax with Gu et al.'s debiasing, DARK,
UDP and its combined offsets, SimCC, regression with RLE's score) turn network outputs back into
``(coords, scores)``; the Wing family of losses and STAR train them. Adaptive Wing's boundary
targets and CoordConv channels, each map's moments (mean, covariance, closed-form 2x2 eigen), and
PIPNet's neighbour table, targets, merging decoder and loss sit beside them. Every function takes NumPy arrays, PyTorch tensors
(CPU or GPU, with autograd, under ``torch.compile``) or any array API library's arrays, and
returns the same kind; float16/bfloat16 inputs are computed in float32 and rounded once.
Codec objects (:func:`get_codec`) pair each encoder with its decoder in image pixels, for training
loops, the benchmark and mmpose (``landmark_codecs.mmpose``). ``landmark_codecs.torch`` holds
Modules for the decoders and losses, noise from a ``torch.Generator`` and a batch encoder.
Coordinates are ``(x, y)`` in heatmap pixels with integers at pixel centres (image pixels for
codecs); see :mod:`landmark_codecs.coords` for the conventions.
"""

from ._common import DecodedLandmarks, HeatmapTargets
from .argmax import decode_argmax
from .boundaries import BoundaryTargets, coordinate_channels, encode_boundaries, face_boundaries
from .codecs import Codec, EncodedTargets, LandmarksOutsideWarning, codec_names, codec_options, get_codec
from .coords import flip_horizontal, heatmap_to_image, image_to_heatmap, in_heatmap
from .dark import decode_dark
from .gaussian import encode_gaussian
from .layouts import MEAN_SHAPES, POSE_LAYOUTS, PoseLayout, mean_shape, pose_layout
from .locref import LocRefTargets, decode_locref, encode_locref
from .losses import adaptive_wing_loss, dsnt_regularization, soft_wing_loss, star_loss, weighted_loss_map, wing_loss
from .moments import Eigh2x2, HeatmapMoments, eigh_2x2, heatmap_moments
from .pipnet import PIPNetNeighbors, PIPNetTargets, decode_pipnet, encode_pipnet, pipnet_loss, pipnet_neighbors
from .regression import RegressionTargets, decode_regression, encode_regression
from .rounding import decode_randomized_rounding, encode_randomized_rounding, representable_coords
from .simcc import SimCCTargets, decode_simcc, encode_simcc, simcc_bins, simcc_visibility
from .soft_argmax import decode_local_soft_argmax, decode_soft_argmax, encode_soft_argmax
from .udp import UDPCombinedTargets, decode_udp, decode_udp_combined, encode_udp, encode_udp_combined

__version__ = "0.2.0"

__all__ = [
    "MEAN_SHAPES",
    "POSE_LAYOUTS",
    "BoundaryTargets",
    "Codec",
    "DecodedLandmarks",
    "Eigh2x2",
    "EncodedTargets",
    "HeatmapMoments",
    "HeatmapTargets",
    "LandmarksOutsideWarning",
    "LocRefTargets",
    "PIPNetNeighbors",
    "PIPNetTargets",
    "PoseLayout",
    "RegressionTargets",
    "SimCCTargets",
    "UDPCombinedTargets",
    "__version__",
    "adaptive_wing_loss",
    "codec_names",
    "codec_options",
    "coordinate_channels",
    "decode_argmax",
    "decode_dark",
    "decode_local_soft_argmax",
    "decode_locref",
    "decode_pipnet",
    "decode_randomized_rounding",
    "decode_regression",
    "decode_simcc",
    "decode_soft_argmax",
    "decode_udp",
    "decode_udp_combined",
    "dsnt_regularization",
    "eigh_2x2",
    "encode_boundaries",
    "encode_gaussian",
    "encode_locref",
    "encode_pipnet",
    "encode_randomized_rounding",
    "encode_regression",
    "encode_simcc",
    "encode_soft_argmax",
    "encode_udp",
    "encode_udp_combined",
    "face_boundaries",
    "flip_horizontal",
    "get_codec",
    "heatmap_moments",
    "heatmap_to_image",
    "image_to_heatmap",
    "in_heatmap",
    "mean_shape",
    "pipnet_loss",
    "pipnet_neighbors",
    "pose_layout",
    "representable_coords",
    "simcc_bins",
    "simcc_visibility",
    "soft_wing_loss",
    "star_loss",
    "weighted_loss_map",
    "wing_loss",
]

# Submodules with optional extras or their own weight, reachable as attributes
# (``lc.metrics.nme``) but imported on first use, as NumPy and SciPy do: ``import
# landmark_codecs`` stays light and imports neither torch nor matplotlib.
_LAZY_SUBMODULES = ("bench", "metrics", "mmpose", "testing", "torch")


def __getattr__(name: str) -> object:
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_SUBMODULES})
