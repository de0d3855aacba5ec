"""torch-only pieces of :mod:`._xp` that must exist as module-level classes.

Imported by ``_xp`` only when torch tensors arrive, so the core never needs torch. A class
defined at import time (not inside a function) is what ``torch.compile(fullgraph=True)`` can trace.
"""

from __future__ import annotations

from typing import Any

import torch


class FusedElementwise(torch.autograd.Function):
    """``value`` with the elementwise gradient ``slope`` w.r.t. ``e``, both from one forward pass.

    ``apply(e, y, value_and_slope)``: ``value_and_slope(e, y) -> (value, slope)``; no gradient
    for ``y``; differentiable once.
    """

    @staticmethod
    def forward(ctx: Any, e: torch.Tensor, y: torch.Tensor, value_and_slope: Any) -> torch.Tensor:
        value, slope = value_and_slope(e, y)
        ctx.save_for_backward(slope)
        return value

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (slope,) = ctx.saved_tensors
        return grad * slope, None, None
