"""The thin PyTorch adapter: ``nn.Module`` wrappers that only call the core functions.

Importing this module needs torch (``pip install "landmark_codecs[torch]"``); the rest of the
package does not. Each Module stores its hyperparameters (validated once, at construction, by
calling the function on an empty tensor) and its ``forward`` calls the function of the same name.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from . import losses, pipnet

__all__ = ["WingLoss", "AdaptiveWingLoss", "SoftWingLoss", "PIPNetLoss"]

Reduction = Literal["mean", "sum", "none"]


class WingLoss(nn.Module):
    """:func:`landmark_codecs.wing_loss` as a Module.

    ``forward(pred, target, mask=None)``; shapes and conventions as the function.

    >>> loss = WingLoss(omega=10.0, epsilon=2.0)
    >>> round(loss(torch.tensor([1.0, -10.0]), torch.zeros(2)).item(), 4)
    10.9861
    """

    def __init__(self, *, omega: float = 10.0, epsilon: float = 2.0, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.omega, self.epsilon, self.reduction = omega, epsilon, reduction
        losses.wing_loss(torch.empty(0), torch.empty(0), **self._kwargs())

    def _kwargs(self) -> dict:
        return {"omega": self.omega, "epsilon": self.epsilon, "reduction": self.reduction}

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return losses.wing_loss(pred, target, mask=mask, **self._kwargs())

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._kwargs().items())


class AdaptiveWingLoss(nn.Module):
    """:func:`landmark_codecs.adaptive_wing_loss` as a Module, optionally with its weighted loss map.

    With ``weighted_loss_map=True`` each call builds :func:`landmark_codecs.weighted_loss_map`
    from the target (``map_threshold``, ``map_weight``, ``map_kernel_size``: the paper's 0.2, 10
    and 3) and multiplies it with any ``weight`` passed to ``forward``.

    ``forward(pred, target, mask=None, weight=None)``: ``(..., K, H, W)`` heatmaps.

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
        map_weight: float = 10.0,
        map_kernel_size: int = 3,
    ) -> None:
        super().__init__()
        self.omega, self.theta, self.epsilon, self.alpha, self.reduction = omega, theta, epsilon, alpha, reduction
        if not isinstance(weighted_loss_map, bool):
            raise TypeError(f"weighted_loss_map must be a bool, got {weighted_loss_map!r}")
        self.weighted_loss_map = weighted_loss_map
        self.map_threshold, self.map_weight, self.map_kernel_size = map_threshold, map_weight, map_kernel_size
        losses.adaptive_wing_loss(torch.empty(0), torch.empty(0), **self._kwargs())
        if weighted_loss_map:
            losses.weighted_loss_map(torch.empty(0, 0), **self._map_kwargs())

    def _kwargs(self) -> dict:
        return {"omega": self.omega, "theta": self.theta, "epsilon": self.epsilon, "alpha": self.alpha, "reduction": self.reduction}

    def _map_kwargs(self) -> dict:
        return {"threshold": self.map_threshold, "weight": self.map_weight, "kernel_size": self.map_kernel_size}

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.weighted_loss_map:
            loss_map = losses.weighted_loss_map(target, **self._map_kwargs())
            weight = loss_map if weight is None else loss_map * weight
        return losses.adaptive_wing_loss(pred, target, weight=weight, mask=mask, **self._kwargs())

    def extra_repr(self) -> str:
        items = dict(self._kwargs(), weighted_loss_map=self.weighted_loss_map)
        if self.weighted_loss_map:
            items.update({f"map_{k}": v for k, v in self._map_kwargs().items()})
        return ", ".join(f"{k}={v!r}" for k, v in items.items())


class SoftWingLoss(nn.Module):
    """:func:`landmark_codecs.soft_wing_loss` as a Module.

    ``forward(pred, target, mask=None)``; shapes and conventions as the function.

    >>> loss = SoftWingLoss(reduction="sum")
    >>> loss(torch.tensor([0.5, 2.0]), torch.zeros(2)).item()
    2.5
    """

    def __init__(self, *, omega1: float = 2.0, omega2: float = 20.0, epsilon: float = 0.5, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.omega1, self.omega2, self.epsilon, self.reduction = omega1, omega2, epsilon, reduction
        losses.soft_wing_loss(torch.empty(0), torch.empty(0), **self._kwargs())

    def _kwargs(self) -> dict:
        return {"omega1": self.omega1, "omega2": self.omega2, "epsilon": self.epsilon, "reduction": self.reduction}

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return losses.soft_wing_loss(pred, target, mask=mask, **self._kwargs())

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._kwargs().items())


class PIPNetLoss(nn.Module):
    """:func:`landmark_codecs.pipnet_loss` as a Module.

    ``forward(scores, offsets, neighbor_offsets, targets)``: the network's three outputs and the
    :class:`landmark_codecs.PIPNetTargets` from :func:`landmark_codecs.encode_pipnet`; shapes in
    :mod:`landmark_codecs.pipnet`. The weights are checked at construction.

    >>> import landmark_codecs as lc
    >>> table = lc.pipnet_neighbors(torch.tensor([[0.0, 0.0], [1.0, 0.0]]), num_neighbors=1)
    >>> t = lc.encode_pipnet(torch.tensor([[0.75, 0.0], [1.25, 0.5]]), grid_size=(2, 2), neighbor_index=table)
    >>> PIPNetLoss()(t.scores, t.offsets + 0.5, t.neighbor_offsets, t).item()
    1.0
    """

    def __init__(self, *, score_weight: float = 10.0, offset_weight: float = 1.0) -> None:
        super().__init__()
        self.score_weight, self.offset_weight = pipnet.loss_weights(score_weight, offset_weight)

    def forward(
        self, scores: torch.Tensor, offsets: torch.Tensor, neighbor_offsets: torch.Tensor, targets: pipnet.PIPNetTargets
    ) -> torch.Tensor:
        return pipnet.pipnet_loss(
            scores, offsets, neighbor_offsets, targets, score_weight=self.score_weight, offset_weight=self.offset_weight
        )

    def extra_repr(self) -> str:
        return f"score_weight={self.score_weight!r}, offset_weight={self.offset_weight!r}"
