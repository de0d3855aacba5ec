"""The old name of :mod:`landmark_codecs.layouts` (mean face shapes and human pose layouts), kept
so that ``from landmark_codecs.shapes import mean_shape`` still works."""

from .layouts import *  # noqa: F403
from .layouts import __all__ as __all__
from .layouts import packaged_path as packaged_path
