"""Collection of the package's doctests: modules for optional extras are skipped without them."""

import importlib.util

collect_ignore = []
if importlib.util.find_spec("mmpose") is None:
    collect_ignore.append("src/landmark_codecs/mmpose.py")
if importlib.util.find_spec("torch") is None:
    # the torch adapter and its backend special cases import torch at module level
    collect_ignore += ["src/landmark_codecs/torch.py", "src/landmark_codecs/_xp_torch.py"]
