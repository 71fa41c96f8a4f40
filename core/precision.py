"""Mixed precision: what ``train.precision`` means for the engines and the tasks.

``train.precision`` sets DeepSpeed's ``bf16``/``fp16`` section for every engine (see
:mod:`audio_core.engine.ds_config`): the module's parameters are held in that dtype, the
optimizer keeps float32 master weights. On top of it each engine's forward runs under
``torch.autocast`` of the same dtype (:func:`autocast`), so that the ops autocast keeps in
float32 (reductions, norms, softmax) do so. What must be float32 whatever the precision
runs in :func:`float32_region` (autocast off, floating inputs cast to float32): the STFT
and mel front ends (:mod:`audio_core.audio.dsp`), the spectral losses
(:mod:`audio_core.components.spectral_losses`) and the spectrogram of every spectral
discriminator.

fp16 uses DeepSpeed's dynamic loss scaling: the scaled loss is backpropagated, the
gradients are checked for inf/NaN across all ranks (an all-reduce of the overflow flag),
and on overflow every rank skips the optimizer step and the scale is divided by
``scale_factor`` (2); after ``loss_scale_window`` overflow-free steps it doubles.
:data:`FP16_DEFAULTS` fills what the DeepSpeed config leaves out; the scale is saved with
each engine's checkpoint and restored on resume.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch

#: ``train.precision`` -> compute dtype.
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

#: DeepSpeed ``fp16`` keys audio-core fills when absent: dynamic scaling from 2**16,
#: halved on every overflow (``hysteresis`` 1, as ``torch.amp.GradScaler``), doubled after
#: 1000 clean steps, never below 1.
FP16_DEFAULTS = {"loss_scale": 0, "initial_scale_power": 16, "loss_scale_window": 1000,
                 "hysteresis": 1, "consecutive_hysteresis": False, "min_loss_scale": 1}

F = TypeVar("F", bound=Callable[..., Any])


def precision_dtype(precision: str) -> torch.dtype:
    """The compute dtype of ``train.precision`` (``fp32``, ``bf16`` or ``fp16``)."""
    try:
        return DTYPES[precision]
    except KeyError:
        raise ValueError(f"unknown precision {precision!r}; expected one of "
                         f"{', '.join(DTYPES)}") from None


@contextlib.contextmanager
def autocast(dtype: torch.dtype, device: torch.device | str) -> Iterator[None]:
    """``torch.autocast`` to ``dtype`` on ``device``'s type; nothing for float32 or a
    device type without autocast."""
    kind = torch.device(device).type
    if dtype == torch.float32 or not torch.amp.is_autocast_available(kind):
        yield
        return
    with torch.autocast(device_type=kind, dtype=dtype):
        yield


def _to_float32(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point() \
            and value.dtype != torch.float64:
        return value.float()
    return value


def float32_region(fn: F) -> F:
    """Decorator: run ``fn`` with autocast disabled and its floating tensor arguments
    (positional and keyword; not float64) cast to float32."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        args = tuple(_to_float32(a) for a in args)
        kwargs = {k: _to_float32(v) for k, v in kwargs.items()}
        device = next((a.device for a in (*args, *kwargs.values())
                       if isinstance(a, torch.Tensor)), torch.device("cpu"))
        if torch.amp.is_autocast_available(device.type):
            with torch.autocast(device_type=device.type, enabled=False):
                return fn(*args, **kwargs)
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
