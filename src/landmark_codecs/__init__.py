"""landmark_codecs: exact, fast, tested landmark coding primitives on every array library.

Encoders turn ``(..., K, 2)`` landmark coordinates into ``(..., K, H, W)`` training targets;
decoders (argmax, H3R, soft-argmax, DARK, UDP, SimCC) turn network outputs back into
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
from .coords import flip_horizontal, heatmap_to_image, image_to_heatmap, in_heatmap
from .codecs import Codec, EncodedTargets, LandmarksOutsideWarning, codec_names, codec_options, get_codec
from .dark import decode_dark
from .gaussian import encode_gaussian
from .losses import adaptive_wing_loss, soft_wing_loss, star_loss, weighted_loss_map, wing_loss
from .moments import Eigh2x2, HeatmapMoments, eigh_2x2, heatmap_moments
from .pipnet import PIPNetNeighbors, PIPNetTargets, decode_pipnet, encode_pipnet, pipnet_loss, pipnet_neighbors
from .rounding import decode_randomized_rounding, encode_randomized_rounding, representable_coords
from .simcc import SimCCTargets, decode_simcc, encode_simcc, simcc_bins
from .soft_argmax import decode_soft_argmax, encode_soft_argmax
from .shapes import MEAN_SHAPES, mean_shape
from .udp import decode_udp, encode_udp

__version__ = "0.2.0"

__all__ = [
    "__version__",
    "get_codec",
    "codec_names",
    "codec_options",
    "Codec",
    "EncodedTargets",
    "LandmarksOutsideWarning",
    "HeatmapTargets",
    "DecodedLandmarks",
    "mean_shape",
    "MEAN_SHAPES",
    "image_to_heatmap",
    "heatmap_to_image",
    "flip_horizontal",
    "in_heatmap",
    "representable_coords",
    "encode_gaussian",
    "encode_randomized_rounding",
    "encode_soft_argmax",
    "decode_argmax",
    "decode_randomized_rounding",
    "decode_soft_argmax",
    "decode_dark",
    "encode_udp",
    "decode_udp",
    "encode_simcc",
    "decode_simcc",
    "simcc_bins",
    "SimCCTargets",
    "wing_loss",
    "adaptive_wing_loss",
    "weighted_loss_map",
    "soft_wing_loss",
    "star_loss",
    "heatmap_moments",
    "eigh_2x2",
    "HeatmapMoments",
    "Eigh2x2",
    "face_boundaries",
    "encode_boundaries",
    "coordinate_channels",
    "BoundaryTargets",
    "pipnet_neighbors",
    "encode_pipnet",
    "decode_pipnet",
    "pipnet_loss",
    "PIPNetNeighbors",
    "PIPNetTargets",
]
