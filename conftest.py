"""Collection of the package's doctests: the mmpose plugin imports mmpose, an optional extra."""

import importlib.util

collect_ignore = [] if importlib.util.find_spec("mmpose") else ["src/landmark_codecs/mmpose.py"]
