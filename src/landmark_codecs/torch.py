"""The thin PyTorch adapter: Modules that only call the core functions, noise from a
``torch.Generator``, and a batch encoder for collate functions and training steps.

Importing this module needs torch (``pip install "landmark_codecs[torch]"``); the rest of the
package does not. Each Module stores its hyperparameters (validated once, at construction, by
calling its function on a small probe) and its ``forward`` calls the function of the same name;
a Module never holds state that its function does not take (PIPNet's neighbour table is a
buffer, so ``.to(device)`` moves it).

Convention:
    As the core: ``(x, y)`` coordinates in heatmap pixels with integers at pixel centres
    (grid cells for PIPNet, image pixels for UDP and SimCC); heatmaps ``(..., K, H, W)``; sizes
    ``(W, H)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

try:
    import torch
    from torch import nn
except ImportError as err:  # pragma: no cover - exercised in the CI leg without torch
    raise ImportError(
        'landmark_codecs.torch needs PyTorch, which is not installed: pip install "landmark-codecs[torch]" '
        "(or your own torch build first; the rest of landmark_codecs works without it)"
    ) from err

from . import _validation as check
from . import (
    _xp,
    argmax,
    boundaries,
    codecs,
    coords,
    dark,
    locref,
    losses,
    pipnet,
    regression,
    rounding,
    simcc,
    soft_argmax,
    udp,
)

__all__ = [
    "AdaptiveWingLoss",
    "ArgmaxDecoder",
    "CodecDecoder",
    "CoordConv2d",
    "DSNTRegularization",
    "DarkDecoder",
    "LocRefDecoder",
    "LocalSoftArgmaxDecoder",
    "PIPNetDecoder",
    "PIPNetLoss",
    "RandomizedRoundingDecoder",
    "RegressionDecoder",
    "STARLoss",
    "SimCCDecoder",
    "SoftArgmaxDecoder",
    "SoftWingLoss",
    "TargetEncoder",
    "UDPCombinedDecoder",
    "UDPDecoder",
    "WingLoss",
    "uniform_noise",
]

Reduction = Literal["mean", "sum", "none"]


def uniform_noise(coords: torch.Tensor, /, *, rng: torch.Generator) -> torch.Tensor:
    """Uniform [0, 1) noise for a stochastic encoder, drawn from ``rng`` on ``coords``' device.

    Returns a tensor of ``coords``' shape ``(..., K, 2)``, dtype and device, for the ``noise``
    argument of :func:`landmark_codecs.encode_randomized_rounding`. The draw happens on the
    device (no host round-trip); ``rng`` must live on that device type
    (``torch.Generator(device="cuda")`` for CUDA tensors). In float16/bfloat16 the draw is
    rounded to the dtype (a value may round to 1.0, which never rounds a coordinate up): keep
    coordinates in float32 where the sampler's unbiasedness matters.

    >>> g = torch.Generator().manual_seed(0)
    >>> noise = uniform_noise(torch.zeros(4, 98, 2), rng=g)
    >>> noise.shape, bool(((noise >= 0) & (noise < 1)).all())
    (torch.Size([4, 98, 2]), True)
    """
    xp = _xp.namespace(coords=coords)
    check.coords(xp, coords)
    if not isinstance(rng, torch.Generator):
        raise TypeError(f"rng must be a torch.Generator, got {type(rng).__module__}.{type(rng).__qualname__}")
    return _xp.uniform(xp, tuple(coords.shape), dtype=coords.dtype, device=coords.device, rng=rng)


class _FunctionModule(nn.Module):
    """The one Module pattern of this adapter: a library function's keyword options, stored once
    in ``options`` and shown by ``repr``; the subclass checks them at construction by calling the
    function on a tiny probe (a bad option fails there, with the function's own message), and its
    ``forward``, whose signature is the function's, passes them on."""

    options: dict[str, Any]

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.options = options

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.options.items())


class ArgmaxDecoder(_FunctionModule):
    """:func:`landmark_codecs.decode_argmax` as a Module.

    ``forward(heatmaps) -> (coords, scores)``: ``(..., K, H, W)`` -> ``(..., K, 2)``, ``(..., K)``.

    >>> maps = torch.zeros(1, 3, 4); maps[0, 1, 2] = 1.0; maps[0, 1, 3] = 0.5
    >>> ArgmaxDecoder(refine="quarter")(maps)[0].tolist()
    [[2.25, 1.0]]
    """

    def __init__(self, *, refine: Literal["none", "quarter"] = "none") -> None:
        super().__init__(refine=refine)
        argmax.decode_argmax(torch.zeros(1, 1, 1), **self.options)

    def forward(self, heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return argmax.decode_argmax(heatmaps, **self.options)


class RandomizedRoundingDecoder(_FunctionModule):
    """:func:`landmark_codecs.decode_randomized_rounding` (H3R's activation-set decoding) as a Module.

    ``forward(heatmaps) -> (coords, scores)``: ``(..., K, H, W)`` -> ``(..., K, 2)``, ``(..., K)``.

    >>> maps = torch.zeros(1, 3, 4); maps[0, 1, 1:3] = torch.tensor([0.75, 0.25])
    >>> RandomizedRoundingDecoder(top_k=4, logits=False)(maps)[0].tolist()
    [[1.25, 1.0]]
    """

    def __init__(
        self,
        *,
        logits: bool,
        top_k: int = 9,
        activation: Literal["topk", "window"] = "topk",
        window_size: int = 3,
    ) -> None:
        super().__init__(top_k=top_k, activation=activation, window_size=window_size, logits=logits)
        probe = torch.zeros(1, 1, top_k if activation == "topk" and isinstance(top_k, int) and top_k > 0 else 1)
        rounding.decode_randomized_rounding(probe, **self.options)

    def forward(self, heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return rounding.decode_randomized_rounding(heatmaps, **self.options)


class SoftArgmaxDecoder(_FunctionModule):
    """:func:`landmark_codecs.decode_soft_argmax` (integral regression) as a Module: a network head.

    ``forward(heatmaps) -> (coords, scores)``: ``(..., K, H, W)`` logits (or probabilities) ->
    ``(..., K, 2)``, ``(..., K)``; differentiable in ``heatmaps``. ``debias=True``: Gu et al.'s
    compensation of the zero-logit background (see the function).

    >>> head = SoftArgmaxDecoder(logits=True, beta=1.0)
    >>> coords, _ = head(torch.zeros(2, 5, 8, 8, requires_grad=True))
    >>> coords[0, 0].tolist(), coords.requires_grad
    ([3.5, 3.5], True)
    """

    def __init__(self, *, logits: bool, beta: float = 1.0, debias: bool = False) -> None:
        super().__init__(beta=beta, logits=logits, debias=debias)
        soft_argmax.decode_soft_argmax(torch.zeros(1, 1, 1), **self.options)

    def forward(self, heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return soft_argmax.decode_soft_argmax(heatmaps, **self.options)


class LocalSoftArgmaxDecoder(_FunctionModule):
    """:func:`landmark_codecs.decode_local_soft_argmax` as a Module: a softmax over a window
    around the maximum, with ``sigma`` its truncation inverted.

    ``forward(heatmaps) -> (coords, scores)``: ``(..., K, H, W)`` -> ``(..., K, 2)``, ``(..., K)``;
    differentiable in ``heatmaps`` within the window.

    >>> import landmark_codecs as lc
    >>> maps, _ = lc.encode_gaussian(torch.tensor([[0.3, 4.8]], dtype=torch.float64), heatmap_size=(8, 6), sigma=1.5)
    >>> [round(v, 6) for v in LocalSoftArgmaxDecoder(logits=False, sigma=1.5)(maps)[0][0].tolist()]
    [0.3, 4.8]
    """

    def __init__(self, *, logits: bool, window_size: int = 5, beta: float = 1.0, sigma: float | None = None) -> None:
        super().__init__(window_size=window_size, beta=beta, logits=logits, sigma=sigma)
        soft_argmax.decode_local_soft_argmax(torch.zeros(1, 1, 1), **self.options)

    def forward(self, heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return soft_argmax.decode_local_soft_argmax(heatmaps, **self.options)


class DarkDecoder(_FunctionModule):
    """:func:`landmark_codecs.decode_dark` as a Module.

    ``forward(heatmaps) -> (coords, scores)``: ``(..., K, H, W)`` -> ``(..., K, 2)``, ``(..., K)``.

    >>> import landmark_codecs as lc
    >>> maps, _ = lc.encode_gaussian(torch.tensor([[3.3, 1.8]], dtype=torch.float64), heatmap_size=(8, 6), sigma=2.0)
    >>> [round(v, 6) for v in DarkDecoder(sigma=2.0)(maps)[0][0].tolist()]
    [3.3, 1.8]
    """

    def __init__(self, *, sigma: float, iterations: int = 4, kernel_size: int | None = None) -> None:
        super().__init__(sigma=sigma, iterations=iterations, kernel_size=kernel_size)
        dark.decode_dark(torch.zeros(1, 1, 1), **self.options)

    def forward(self, heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return dark.decode_dark(heatmaps, **self.options)


class UDPDecoder(_FunctionModule):
    """:func:`landmark_codecs.decode_udp` as a Module: heatmaps to image pixels, UDP's way.

    ``forward(heatmaps) -> (coords, scores)``: ``(..., K, H, W)`` -> ``(..., K, 2)`` in image
    pixels of ``image_size``, ``(..., K)``.

    >>> import landmark_codecs as lc
    >>> maps, _ = lc.encode_udp(torch.tensor([[100.0, 37.5]], dtype=torch.float64), image_size=(256, 256), heatmap_size=(64, 64), sigma=2.0)
    >>> [round(v, 6) for v in UDPDecoder(image_size=(256, 256), sigma=2.0)(maps)[0][0].tolist()]
    [100.0, 37.5]
    """

    def __init__(
        self, *, image_size: Sequence[int], sigma: float, iterations: int = 4, kernel_size: int | None = None
    ) -> None:
        super().__init__(
            image_size=check.size(image_size, "image_size"), sigma=sigma, iterations=iterations, kernel_size=kernel_size
        )
        udp.decode_udp(torch.zeros(1, 2, 2), **self.options)

    def forward(self, heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return udp.decode_udp(heatmaps, **self.options)


class UDPCombinedDecoder(_FunctionModule):
    """:func:`landmark_codecs.decode_udp_combined` as a Module: UDP's disk and offset maps to image pixels.

    ``forward(heatmaps, offsets) -> (coords, scores)``: ``(..., K, H, W)`` and
    ``(..., K, 2, H, W)`` -> ``(..., K, 2)`` in image pixels of ``image_size``, ``(..., K)``.

    >>> import landmark_codecs as lc
    >>> t = lc.encode_udp_combined(torch.tensor([[100.0, 37.5]], dtype=torch.float64), image_size=(256, 256), heatmap_size=(64, 64), radius=3.5)
    >>> [round(v, 6) for v in UDPCombinedDecoder(image_size=(256, 256), radius=3.5)(t.heatmaps, t.offsets)[0][0].tolist()]
    [100.0, 37.5]
    """

    def __init__(self, *, image_size: Sequence[int], radius: float, kernel_size: int | None = 23) -> None:
        super().__init__(image_size=check.size(image_size, "image_size"), radius=radius, kernel_size=kernel_size)
        side = max(2, (kernel_size + 1) // 2) if isinstance(kernel_size, int) and kernel_size > 0 else 2
        udp.decode_udp_combined(torch.zeros(1, side, side), torch.zeros(1, 2, side, side), **self.options)

    def forward(self, heatmaps: torch.Tensor, offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return udp.decode_udp_combined(heatmaps, offsets, **self.options)


class LocRefDecoder(_FunctionModule):
    """:func:`landmark_codecs.decode_locref` as a Module: DeepLabCut's score and locref maps to
    heatmap pixels (``CodecDecoder`` of a ``"locref"`` codec gives image pixels, DeepLabCut's
    convention included).

    ``forward(heatmaps, locref) -> (coords, scores)``: ``(..., K, H, W)`` and
    ``(..., K, 2, H, W)`` -> ``(..., K, 2)``, ``(..., K)``.

    >>> import landmark_codecs as lc
    >>> t = lc.encode_locref(torch.tensor([[2.25, 1.0]], dtype=torch.float64), heatmap_size=(5, 3), radius=1.5, locref_std=2.0)
    >>> LocRefDecoder(locref_std=2.0)(t.heatmaps, t.locref)[0][0].tolist()
    [2.25, 1.0]
    """

    def __init__(self, *, locref_std: float) -> None:
        super().__init__(locref_std=locref_std)
        locref.decode_locref(torch.zeros(1, 1, 1), torch.zeros(1, 2, 1, 1), **self.options)

    def forward(self, heatmaps: torch.Tensor, offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return locref.decode_locref(heatmaps, offsets, **self.options)


class RegressionDecoder(_FunctionModule):
    """:func:`landmark_codecs.decode_regression` as a Module: a regression head's labels to image pixels.

    ``forward(labels) -> (coords, scores)``: ``(..., K, 2)`` ``(x / W, y / H)``, or ``(..., K, 4)``
    with RLE's ``(sigma_x, sigma_y)`` -> ``(..., K, 2)`` in image pixels of ``image_size``, ``(..., K)``.

    >>> [v for v in RegressionDecoder(image_size=(192, 256))(torch.tensor([[0.25, 0.5]]))[0][0].tolist()]
    [48.0, 128.0]
    """

    def __init__(self, *, image_size: Sequence[int]) -> None:
        super().__init__(image_size=check.size(image_size, "image_size"))

    def forward(self, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return regression.decode_regression(labels, **self.options)


class SimCCDecoder(_FunctionModule):
    """:func:`landmark_codecs.decode_simcc` as a Module.

    ``forward(x_labels, y_labels) -> (coords, scores)``: ``(..., K, W * split_ratio)`` and
    ``(..., K, H * split_ratio)`` -> ``(..., K, 2)`` in image pixels, ``(..., K)``.

    >>> import landmark_codecs as lc
    >>> t = lc.encode_simcc(torch.tensor([[10.25, 3.0]], dtype=torch.float64), image_size=(16, 8), sigma=2.0)
    >>> [round(v, 6) for v in SimCCDecoder(image_size=(16, 8), sigma=2.0)(t.x_labels, t.y_labels)[0][0].tolist()]
    [10.25, 3.0]
    """

    def __init__(
        self,
        *,
        image_size: Sequence[int],
        split_ratio: float = 2.0,
        convention: coords.Convention = "pixel_center",
        refine: Literal["none", "dark"] = "dark",
        sigma: float | tuple[float, float] | None = None,
        iterations: int = 4,
        kernel_size: int | None = None,
    ) -> None:
        size = check.size(image_size, "image_size")
        super().__init__(
            image_size=size,
            split_ratio=split_ratio,
            convention=convention,
            refine=refine,
            sigma=sigma,
            iterations=iterations,
            kernel_size=kernel_size,
        )
        bins = simcc.simcc_bins(size, split_ratio)
        simcc.decode_simcc(torch.zeros(1, bins[0]), torch.zeros(1, bins[1]), **self.options)

    def forward(self, x_labels: torch.Tensor, y_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return simcc.decode_simcc(x_labels, y_labels, **self.options)


class PIPNetDecoder(_FunctionModule):
    """:func:`landmark_codecs.decode_pipnet` as a Module, with the neighbour table as buffers.

    ``forward(scores, offsets, neighbor_offsets) -> (coords, scores)`` in grid cells. The table
    (from :func:`landmark_codecs.pipnet_neighbors`, any library) is stored as non-persistent
    buffers, so ``module.to(device)`` moves it with the model and ``state_dict`` stays free of it.

    >>> import landmark_codecs as lc
    >>> table = lc.pipnet_neighbors(torch.tensor([[0.0, 0.0], [1.0, 0.0]]), num_neighbors=1)
    >>> t = lc.encode_pipnet(torch.tensor([[0.75, 0.0], [1.25, 0.5]]), grid_size=(2, 2), neighbors=table)
    >>> PIPNetDecoder(table)(t.scores, t.offsets, t.neighbor_offsets)[0].tolist()
    [[0.75, 0.0], [1.25, 0.5]]
    """

    index: torch.Tensor  # the table's three fields, registered as buffers in __init__
    reverse_index: torch.Tensor
    reverse_count: torch.Tensor

    def __init__(self, neighbors: pipnet.PIPNetNeighbors, /, *, merge: pipnet.Merge = "mean") -> None:
        super().__init__(merge=merge)
        if not isinstance(neighbors, pipnet.PIPNetNeighbors):
            raise TypeError(
                f"neighbors must be the PIPNetNeighbors from pipnet_neighbors, got {type(neighbors).__qualname__}"
            )
        # checked once on the host, here: a decode in a training step cannot afford the round-trip
        checked = [torch.as_tensor(t) for t in pipnet.host_checked_table(neighbors)]
        for name, table in zip(neighbors._fields, checked):
            # On the given table's device (a tensor's) or the CPU; .to() moves the buffers.
            self.register_buffer(
                name,
                table.to(neighbors[0].device) if isinstance(neighbors[0], torch.Tensor) else table,
                persistent=False,
            )
        k, n = self.index.shape
        probe = (torch.zeros(k, 1, 1), torch.zeros(k, 2, 1, 1), torch.zeros(k, n, 2, 1, 1))
        pipnet.decode_pipnet(*probe, neighbors=self.neighbors, **self.options)

    @property
    def neighbors(self) -> pipnet.PIPNetNeighbors:
        return pipnet.PIPNetNeighbors(self.index, self.reverse_index, self.reverse_count)

    def forward(
        self, scores: torch.Tensor, offsets: torch.Tensor, neighbor_offsets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return pipnet.decode_pipnet(scores, offsets, neighbor_offsets, neighbors=self.neighbors, **self.options)


class CodecDecoder(nn.Module):
    """A codec's ``decode`` as a Module: network outputs to ``(coords, scores)`` in image pixels.

    ``forward(*outputs) -> (coords, scores)``: the codec's outputs (``codec.output_names``, e.g.
    ``(..., K, H, W)`` heatmaps, SimCC's two label sets, PIPNet's three maps) -> ``(..., K, 2)``
    ``(x, y)`` in pixels of ``codec.image_size`` under the codec's convention, and ``(..., K)``
    scores: :meth:`landmark_codecs.Codec.decode`, with its shape checks. For any codec of
    :func:`landmark_codecs.codec_names`; it exports with a dynamic batch axis
    (``torch.export.export``, ``torch.onnx.export(..., dynamo=True)``; docs/deploy.md) and
    compiles. PIPNet's neighbour table is held as non-persistent buffers, so ``.to(device)``
    moves it (no copy per call) and ``state_dict`` stays free of it.

    Convention:
        As the codec's: ``(x, y)`` image pixels, integers at pixel centres.

    >>> import landmark_codecs as lc
    >>> codec = lc.get_codec("dark", image_size=(256, 256), heatmap_size=(64, 64), sigma=2.0)
    >>> maps = codec.encode(torch.tensor([[100.0, 37.5]], dtype=torch.float64)).outputs[0]
    >>> [round(v, 6) for v in CodecDecoder(codec)(maps)[0][0].tolist()]
    [100.0, 37.5]
    """

    index: torch.Tensor  # PIPNet only: its table's three fields, registered as buffers in __init__
    reverse_index: torch.Tensor
    reverse_count: torch.Tensor

    def __init__(self, codec: codecs.Codec, /) -> None:
        super().__init__()
        if not isinstance(codec, codecs.Codec):
            raise TypeError(
                f"codec must be a landmark_codecs codec (from get_codec), got {type(codec).__module__}.{type(codec).__qualname__}"
            )
        self.codec = codec
        if isinstance(codec, codecs.PIPNetCodec):
            for name, values in zip(codec._table._fields, codec._table):  # checked by the codec
                self.register_buffer(name, torch.as_tensor(values), persistent=False)

    def forward(self, *outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        codec = self.codec
        if not isinstance(codec, codecs.PIPNetCodec):
            coords, scores = codec.decode(*outputs)
            return coords, scores
        table = pipnet.PIPNetNeighbors(self.index, self.reverse_index, self.reverse_count)
        coords, scores = codec._decode_with_table(outputs, table)
        return coords, scores

    def extra_repr(self) -> str:
        return repr(self.codec)


class WingLoss(_FunctionModule):
    """:func:`landmark_codecs.wing_loss` as a Module.

    ``forward(pred, target, weights=None)``; shapes and conventions as the function.

    >>> loss = WingLoss(omega=10.0, epsilon=2.0)
    >>> round(loss(torch.tensor([1.0, -10.0]), torch.zeros(2)).item(), 4)
    10.9861
    """

    def __init__(self, *, omega: float = 10.0, epsilon: float = 2.0, reduction: Reduction = "mean") -> None:
        super().__init__(omega=omega, epsilon=epsilon, reduction=reduction)
        losses.wing_loss(torch.empty(0), torch.empty(0), **self.options)

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        return losses.wing_loss(pred, target, weights=weights, **self.options)


class AdaptiveWingLoss(_FunctionModule):
    """:func:`landmark_codecs.adaptive_wing_loss` as a Module, optionally with its weighted loss map.

    With ``weighted_loss_map=True`` each call builds :func:`landmark_codecs.weighted_loss_map`
    from the target (``map_threshold``, ``map_foreground_weight``, ``map_kernel_size``: the paper's 0.2,
    10 and 3) and multiplies it with any ``loss_map`` passed to ``forward``.

    ``forward(pred, target, weights=None, loss_map=None)``: ``(..., K, H, W)`` heatmaps.

    >>> loss = AdaptiveWingLoss(weighted_loss_map=True)
    >>> pred, target = torch.ones(1, 1, 3, 4), torch.zeros(1, 1, 3, 4)
    >>> round(loss(pred, target).item(), 5)  # empty foreground: the map is all ones
    8.49595
    """

    def __init__(
        self,
        *,
        omega: float = 14.0,
        theta: float = 0.5,
        epsilon: float = 1.0,
        alpha: float = 2.1,
        reduction: Reduction = "mean",
        weighted_loss_map: bool = False,
        map_threshold: float = 0.2,
        map_foreground_weight: float = 10.0,
        map_kernel_size: int = 3,
    ) -> None:
        super().__init__(omega=omega, theta=theta, epsilon=epsilon, alpha=alpha, reduction=reduction)
        # the loss map's options, apart: forward passes them to weighted_loss_map
        self.map_options: dict[str, Any] = {
            "threshold": map_threshold,
            "foreground_weight": map_foreground_weight,
            "kernel_size": map_kernel_size,
        }
        self.weighted_loss_map = check.boolean(weighted_loss_map, "weighted_loss_map")
        losses.adaptive_wing_loss(torch.empty(0), torch.empty(0), **self.options)
        if weighted_loss_map:
            losses.weighted_loss_map(torch.empty(0, 0), **self.map_options)

    def forward(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        weights: torch.Tensor | None = None,
        loss_map: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.weighted_loss_map:
            computed = losses.weighted_loss_map(target, **self.map_options)
            loss_map = computed if loss_map is None else computed * loss_map
        return losses.adaptive_wing_loss(pred, target, loss_map=loss_map, weights=weights, **self.options)

    def extra_repr(self) -> str:
        items = dict(self.options, weighted_loss_map=self.weighted_loss_map)
        if self.weighted_loss_map:
            items.update({f"map_{k}": v for k, v in self.map_options.items()})
        return ", ".join(f"{k}={v!r}" for k, v in items.items())


class SoftWingLoss(_FunctionModule):
    """:func:`landmark_codecs.soft_wing_loss` as a Module.

    ``forward(pred, target, weights=None)``; shapes and conventions as the function.

    >>> loss = SoftWingLoss(reduction="sum")
    >>> loss(torch.tensor([0.5, 2.0]), torch.zeros(2)).item()
    2.5
    """

    def __init__(
        self, *, omega1: float = 2.0, omega2: float = 20.0, epsilon: float = 0.5, reduction: Reduction = "mean"
    ) -> None:
        super().__init__(omega1=omega1, omega2=omega2, epsilon=epsilon, reduction=reduction)
        losses.soft_wing_loss(torch.empty(0), torch.empty(0), **self.options)

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        return losses.soft_wing_loss(pred, target, weights=weights, **self.options)


class STARLoss(_FunctionModule):
    """:func:`landmark_codecs.star_loss` as a Module.

    ``forward(heatmaps, coords, weights=None)``: ``(..., K, H, W)`` maps and ``(..., K, 2)`` ground
    truth in heatmap pixels; shapes and conventions as the function. The options are checked at
    construction.

    >>> maps = torch.zeros(1, 5, 5); maps[0, 1:4, 1:4] = 1.0
    >>> round(STARLoss()(maps, torch.tensor([[2.0, 2.0]])).item(), 4)
    0.375
    """

    def __init__(
        self,
        *,
        omega: float = 1.0,
        distance: losses.StarDistance = "smooth_l1",
        epsilon: float = 1e-5,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(omega=omega, distance=distance, epsilon=epsilon, reduction=reduction)
        losses.star_loss(torch.ones(1, 2, 2), torch.zeros(1, 2), **self.options)

    def forward(
        self, heatmaps: torch.Tensor, coords: torch.Tensor, weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        return losses.star_loss(heatmaps, coords, weights=weights, **self.options)


class DSNTRegularization(_FunctionModule):
    """:func:`landmark_codecs.dsnt_regularization` as a Module (dsntnn's ``js_reg_losses``,
    ``kl_reg_losses``, ``variance_reg_losses``, reduced as its ``average_loss``).

    ``forward(heatmaps, coords, weights=None)``: ``(..., K, H, W)`` probability maps and
    ``(..., K, 2)`` targets in heatmap pixels; shapes and conventions as the function. The options
    are checked at construction.

    >>> maps = torch.zeros(1, 5, 5); maps[0, 2, 1] = maps[0, 2, 3] = 0.5
    >>> DSNTRegularization(sigma=1.0, divergence="variance")(maps, torch.tensor([[2.0, 2.0]])).item()
    1.0
    """

    def __init__(self, *, sigma: float, divergence: losses.Divergence = "js", reduction: Reduction = "mean") -> None:
        super().__init__(sigma=sigma, divergence=divergence, reduction=reduction)
        losses.dsnt_regularization(torch.ones(1, 2, 2) / 4, torch.zeros(1, 2), **self.options)

    def forward(
        self, heatmaps: torch.Tensor, coords: torch.Tensor, weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        return losses.dsnt_regularization(heatmaps, coords, weights=weights, **self.options)


class CoordConv2d(nn.Conv2d):
    """A ``Conv2d`` that first appends :func:`landmark_codecs.coordinate_channels` to its input
    (CoordConv, Liu et al., NeurIPS 2018; with boundary coordinates, Adaptive Wing, ICCV 2019).

    ``in_channels`` counts the input's own channels; the convolution sees 2 more (x, y on the
    corner-aligned [-1, 1] grid), 1 more with ``with_r`` and 2 more with ``with_boundary``
    (x and y where the boundary map exceeds ``threshold``). ``forward(input, boundary=None)``:
    ``input`` ``(N, C, H, W)``; ``boundary`` ``(N, H, W)`` or ``(N, 1, H, W)``, required with
    ``with_boundary=True`` and refused without. Other arguments are ``nn.Conv2d``'s.

    Convention:
        Channel order ``x, y[, r][, x_b, y_b]``, x along W; the AdaptiveWingLoss repository's
        ``CoordConvTh`` appends its two grid channels the other way round (see
        :func:`landmark_codecs.coordinate_channels`).

    >>> conv = CoordConv2d(3, 8, kernel_size=3, padding=1, with_r=True)
    >>> conv.weight.shape[1], conv(torch.zeros(2, 3, 16, 16)).shape
    (6, torch.Size([2, 8, 16, 16]))
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        *args: Any,
        with_r: bool = False,
        with_boundary: bool = False,
        threshold: float = 0.05,
        **kwargs: Any,
    ) -> None:
        self.with_r = check.boolean(with_r, "with_r")
        self.with_boundary = check.boolean(with_boundary, "with_boundary")
        self.threshold = check.finite(threshold, "threshold")
        check.positive_int(in_channels, "in_channels")
        extra = 2 + int(self.with_r) + 2 * int(self.with_boundary)
        super().__init__(in_channels + extra, out_channels, kernel_size, *args, **kwargs)
        self._extra_channels = extra

    def forward(self, input: torch.Tensor, boundary: torch.Tensor | None = None) -> torch.Tensor:  # nn.Conv2d's name
        if not isinstance(input, torch.Tensor):
            raise TypeError(
                f"input must be a torch.Tensor (N, C, H, W), got {type(input).__module__}.{type(input).__qualname__}"
            )
        channels = self.in_channels - self._extra_channels
        if input.ndim != 4 or input.shape[1] != channels:
            raise ValueError(
                f"input must have shape (N, C, H, W) with C = in_channels = {channels}, got shape {tuple(input.shape)}"
            )
        if input.shape[-1] < 2 or input.shape[-2] < 2:
            raise ValueError(
                f"input must be at least 2x2 pixels (the coordinate grid puts -1 and 1 on the first and last pixel centres), got shape {tuple(input.shape)}"
            )
        if boundary is not None and not isinstance(boundary, torch.Tensor):
            raise TypeError(
                f"boundary must be a torch.Tensor (N, H, W) or (N, 1, H, W), got {type(boundary).__module__}.{type(boundary).__qualname__}"
            )
        if boundary is not None and boundary.device != input.device:
            raise ValueError(
                f"boundary must be on input's device, got boundary on {boundary.device}, input on {input.device}"
            )
        if self.with_boundary and boundary is None:
            raise ValueError("boundary is required: this CoordConv2d was built with with_boundary=True")
        if not self.with_boundary and boundary is not None:
            raise ValueError(
                "boundary was given, but this CoordConv2d was built with with_boundary=False (its weights expect no boundary channels)"
            )
        h, w = input.shape[-2:]
        if boundary is not None:
            if boundary.ndim == 4 and boundary.shape[1] == 1:
                boundary = boundary[:, 0]
            if tuple(boundary.shape) != (input.shape[0], h, w):
                raise ValueError(
                    f"boundary must have shape (N, H, W) = {(input.shape[0], h, w)} or (N, 1, H, W), got shape {tuple(boundary.shape)}"
                )
            grid = boundaries.coordinate_channels(
                (w, h), boundary=boundary.to(input.dtype), threshold=self.threshold, with_r=self.with_r
            )
        else:
            grid = boundaries.coordinate_channels((w, h), like=input, with_r=self.with_r).expand(
                input.shape[0], -1, -1, -1
            )
        return super().forward(torch.cat([input, grid], dim=1))

    def extra_repr(self) -> str:
        return (
            super().extra_repr()
            + f", with_r={self.with_r}, with_boundary={self.with_boundary}, threshold={self.threshold!r}"
        )


class PIPNetLoss(_FunctionModule):
    """:func:`landmark_codecs.pipnet_loss` as a Module.

    ``forward(scores, offsets, neighbor_offsets, targets)``: the network's three outputs and the
    :class:`landmark_codecs.PIPNetTargets` from :func:`landmark_codecs.encode_pipnet`; shapes in
    :mod:`landmark_codecs.pipnet`. The weights are checked at construction.

    >>> import landmark_codecs as lc
    >>> table = lc.pipnet_neighbors(torch.tensor([[0.0, 0.0], [1.0, 0.0]]), num_neighbors=1)
    >>> t = lc.encode_pipnet(torch.tensor([[0.75, 0.0], [1.25, 0.5]]), grid_size=(2, 2), neighbors=table)
    >>> PIPNetLoss()(t.scores, t.offsets + 0.5, t.neighbor_offsets, t).item()
    1.0
    """

    def __init__(self, *, score_weight: float = 10.0, offset_weight: float = 1.0) -> None:
        score_weight, offset_weight = pipnet.loss_weights(score_weight, offset_weight)
        super().__init__(score_weight=score_weight, offset_weight=offset_weight)

    def forward(
        self, scores: torch.Tensor, offsets: torch.Tensor, neighbor_offsets: torch.Tensor, targets: pipnet.PIPNetTargets
    ) -> torch.Tensor:
        return pipnet.pipnet_loss(scores, offsets, neighbor_offsets, targets, **self.options)


class TargetEncoder:
    """A codec's :meth:`~landmark_codecs.codecs.Codec.encode` on a chosen device and dtype.

    Use it as a DataLoader's ``collate_fn`` (``encoder.collate``), or call it on a GPU batch of
    keypoints in the training step (``encoder(keypoints)``), where any noise is drawn on the
    device. The codec (from :func:`landmark_codecs.get_codec`) says everything else: the
    coding family, image and heatmap sizes, convention and options; a call returns its
    :class:`~landmark_codecs.codecs.EncodedTargets` ``(outputs, weights, targets)``.

    Randomness: a codec that samples (``"h3r"`` unless ``expected=True``) draws from ``rng``, a
    ``torch.Generator`` on ``device``'s type. Inside DataLoader workers, each worker draws from
    its own generator seeded with ``torch.utils.data.get_worker_info().seed`` (distinct per worker
    and per epoch, reproducible when the DataLoader is seeded), since every worker holds a copy
    of this object and would otherwise repeat the same noise.

    Args:
        codec: a codec object from :func:`landmark_codecs.get_codec`.
        device: where the targets are made (default CPU).
        dtype: real floating dtype of the targets (default float32).
        rng: a ``torch.Generator`` on ``device``'s type, required by a codec that samples
            (``codec.samples``); the others ignore it, as :meth:`~landmark_codecs.codecs.Codec.encode` does.
        keypoints_key: the samples' entry :meth:`TargetEncoder.collate` encodes (``(K, 2)`` image pixels).
        weights_key: the samples' optional entry of per-landmark weights (``(K,)``).

    >>> import numpy as np, landmark_codecs as lc
    >>> codec = lc.get_codec("dark", image_size=(256, 256), heatmap_size=(64, 64), sigma=2.0)
    >>> enc = TargetEncoder(codec)
    >>> (maps,), weights, _ = enc(np.random.default_rng(0).uniform(0, 255, (8, 98, 2)))
    >>> maps.shape, weights.shape, maps.dtype
    (torch.Size([8, 98, 64, 64]), torch.Size([8, 98]), torch.float32)
    >>> batch = enc.collate([{"keypoints": np.full((98, 2), 100.0), "image": torch.zeros(3, 256, 256)}] * 4)
    >>> batch["image"].shape, batch["targets"].outputs[0].shape
    (torch.Size([4, 3, 256, 256]), torch.Size([4, 98, 64, 64]))
    """

    def __init__(
        self,
        codec: codecs.Codec,
        /,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        rng: torch.Generator | None = None,
        keypoints_key: str = "keypoints",
        weights_key: str = "weights",
    ) -> None:
        if not isinstance(codec, codecs.Codec):
            raise TypeError(
                f"codec must be a codec object from landmark_codecs.get_codec(name, ...), got {type(codec).__qualname__}: {codec!r}"
            )
        self.codec = codec
        if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise TypeError(f"dtype must be a real floating torch.dtype, got {dtype!r}")
        self.device, self.dtype = torch.device("cpu" if device is None else device), dtype
        if codec.samples and rng is None:
            raise ValueError(
                f"codec {codec.name!r} samples its target: pass rng=torch.Generator(...), or build the codec with expected=True"
            )
        if rng is not None:  # checked for every codec, used only by one that samples (as Codec.encode)
            if not isinstance(rng, torch.Generator):
                raise TypeError(f"rng must be a torch.Generator, got {type(rng).__module__}.{type(rng).__qualname__}")
            if rng.device.type != self.device.type:
                raise ValueError(
                    f"rng lives on {rng.device}, the targets on {self.device}: use a generator on the same device type"
                )
        self.rng = rng if codec.samples else None
        for name, key in (("keypoints_key", keypoints_key), ("weights_key", weights_key)):
            if not isinstance(key, str):
                raise TypeError(f"{name} must be a str (a key of each sample), got {key!r}")
        if keypoints_key == weights_key:
            raise ValueError(f"keypoints_key and weights_key must differ, got {keypoints_key!r} for both")
        self.keypoints_key, self.weights_key = keypoints_key, weights_key
        self._worker: tuple[int, int] | None = None

    def __call__(self, keypoints: Any, /, weights: Any = None) -> codecs.EncodedTargets:
        """Targets for ``(..., K, 2)`` keypoints in image pixels (tensor, array or a sequence of them).

        ``weights``: optional ``(..., K)`` per-landmark weights or visibility. Inputs are moved
        to ``device`` and ``dtype`` (a host -> device copy when they come from NumPy); a tensor
        already there is used as is and never modified.
        """
        c = self._tensor(keypoints, "keypoints")
        w = None if weights is None else self._tensor(weights, "weights", keep_bool=True)
        return self.codec.encode(c, weights=w, rng=self._generator())

    def collate(self, samples: Sequence[Mapping[str, Any]], /) -> dict[str, Any]:
        """A DataLoader ``collate_fn``: ``default_collate(samples)`` plus ``"targets"``.

        Each sample is a mapping with ``keypoints_key`` (``"keypoints"`` by default) ``(K, 2)``
        in image pixels and optionally ``weights_key`` ``(K,)``; the rest is collated by torch's
        ``default_collate``, the two are stacked under their keys, and ``"targets"`` holds this
        encoder's output for the stacked keypoints.
        """
        from torch.utils.data import default_collate

        lkey, wkey = self.keypoints_key, self.weights_key
        if not samples or not all(isinstance(s, Mapping) and lkey in s for s in samples):
            raise ValueError(
                f"collate expects a non-empty sequence of mappings, each with a {lkey!r} entry of shape (K, 2)"
            )
        rest = [{k: v for k, v in s.items() if k not in (lkey, wkey)} for s in samples]
        batch = default_collate(rest) if rest[0] else {}
        # The keypoints and weights are checked before they are stacked (default_collate would
        # turn booleans into 0/1 coordinates and name no sample in its errors).
        for key, keep_bool in ((lkey, False), (wkey, True)):
            given = [key in s for s in samples]
            if not any(given):
                continue
            if not all(given):
                raise ValueError(
                    f"samples must all have a {key!r} entry or none, got it in {sum(given)} of {len(samples)}"
                )
            parts = [self._checked(s[key], f"samples[{i}][{key!r}]", keep_bool) for i, s in enumerate(samples)]
            shapes = {tuple(t.shape) for t in parts}
            if len(shapes) > 1:
                raise ValueError(f"samples' {key!r} entries must have one shape to stack, got shapes {sorted(shapes)}")
            devices = {str(t.device) for t in parts}
            if len(devices) > 1:
                raise ValueError(
                    f"samples' {key!r} entries must be on one device to stack, got devices {sorted(devices)}"
                )
            batch[key] = torch.stack(parts)
        batch["targets"] = self(batch[lkey], batch.get(wkey))
        return batch

    def _tensor(self, value: Any, name: str, keep_bool: bool = False) -> torch.Tensor:
        """``value`` (a tensor, an array or a sequence of them) as a tensor on ``device``, checked
        before it is converted: real numbers only (booleans only for ``keep_bool``)."""
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, torch.Tensor) for v in value):
            shapes = {tuple(v.shape) for v in value}
            if len(shapes) > 1:
                raise ValueError(f"{name} must be tensors of one shape to stack, got shapes {sorted(shapes)}")
            value = torch.stack(
                [self._checked(v, f"{name}[{i}]", keep_bool).to(self.device) for i, v in enumerate(value)]
            )
        t = self._checked(value, name, keep_bool)
        if keep_bool and t.dtype == torch.bool:
            return t.to(device=self.device)
        return t.to(device=self.device, dtype=self.dtype)

    @staticmethod
    def _checked(value: Any, name: str, keep_bool: bool) -> torch.Tensor:
        """``value`` as a tensor where it is (a tensor as is, an array on the CPU), holding real
        numbers (booleans only for ``keep_bool``), or a TypeError naming ``name``."""
        if isinstance(value, torch.Tensor):
            if value.device.type == "meta":
                raise ValueError(
                    f"{name} is a tensor on the meta device, which holds no values to encode: pass one on a real device"
                )
            if value.dtype.is_complex or (value.dtype == torch.bool and not keep_bool):
                expected = "booleans or real numbers" if keep_bool else "real numbers (integer or floating)"
                raise TypeError(f"{name} must hold {expected}, got dtype {value.dtype}")
            return value
        return torch.as_tensor(check.real_host(_xp.to_host(value, name), name, booleans=keep_bool))

    def _generator(self) -> torch.Generator | None:
        """``rng``, or in a DataLoader worker its own generator seeded from the worker's seed."""
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        if info is None or self.rng is None:
            return self.rng
        if self._worker != (info.id, info.seed):
            self._worker = (info.id, info.seed)
            self._worker_generator = torch.Generator(device=self.rng.device).manual_seed(info.seed)
        return self._worker_generator

    def __repr__(self) -> str:
        return f"TargetEncoder({self.codec!r}, device={self.device}, dtype={self.dtype})"
