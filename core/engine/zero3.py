"""ZeRO-3 support for modules that return records (dataclasses) instead of tensors.

ZeRO-3 fetches a module's partitioned parameters again before its backward through an
autograd function applied to each tensor the module returns. DeepSpeed finds those
tensors only in tensors, tuples, lists and dicts; a :class:`QuantizedResult` or
:class:`AutoencoderOutput` hides them, and the first backward then fails with
"active_backward_submodules is empty". :func:`expose_record_outputs` adds a forward hook
that applies the same function (``module.pre_bwd_fn``, set by DeepSpeed 0.1x's
parameter-offload hooks) to every tensor field of a dataclass output.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn


def _wrap_record(module: nn.Module, _inputs: Any, output: Any) -> Any:
    if not dataclasses.is_dataclass(output) or isinstance(output, type):
        return None
    pre_backward = module.__dict__.get("pre_bwd_fn")
    if pre_backward is None:
        return None
    changes = {f.name: pre_backward.apply(getattr(output, f.name))
               for f in dataclasses.fields(output)
               if isinstance(getattr(output, f.name), torch.Tensor)}
    return dataclasses.replace(output, **changes) if changes else None


def expose_record_outputs(module: nn.Module) -> None:
    """Hook every submodule of a ZeRO-3 engine so record outputs take part in backward."""
    for sub in module.modules():
        sub.register_forward_hook(_wrap_record)
