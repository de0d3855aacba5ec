"""Reusable hypothesis strategies and property checks for landmark codecs.

Property-test your own encoder/decoder pairs with the same tools this library's claims are proven
with::

    from hypothesis import given
    from landmark_codecs.testing import assert_lossless, landmarks

    @given(landmarks((64, 48), region="representable"))
    def test_my_codec_is_lossless(coords):
        assert_lossless(my_encode, my_decode, coords, atol=1e-6)

Needs ``hypothesis`` (strategies), in the ``test``
extra: ``pip install "landmark-codecs[test]"``.
"""

from .checks import assert_lossless, assert_unbiased, to_numpy, unbiased_bound
from .strategies import heatmap_sizes, landmarks

__all__ = ["assert_lossless", "assert_unbiased", "heatmap_sizes", "landmarks", "to_numpy", "unbiased_bound"]
