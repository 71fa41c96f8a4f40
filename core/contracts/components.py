"""Component contracts: one :class:`typing.Protocol` per component kind, checked in code.

:meth:`Registry.build <audio_core.plugins.registry.Registry.build>` checks every component it
builds against its kind's contract (:func:`check_component`) and names what is missing;
``PluginUnderTest.check_components`` does it for every component a plugin registers.

A member with a value in a contract's body is *defaulted*: a component gets the default by
deriving from the contract (``class MyEncoder(nn.Module, Encoder)``; protocols may be
subclassed explicitly) or declares the member itself. Callers read every member directly.
Members without a value are *required*. Shapes:

=============  ==================================================================
kind           shapes
=============  ==================================================================
encoder        waveform ``(batch, channels, time)`` -> ``(batch, dim, frames)``,
               ``frames = num_frames(time) = ceil(time / hop_length)``
decoder        latent ``(batch, dim, frames)`` -> waveform ``(batch, channels, time')``
quantizer      latent ``(batch, dim, frames)`` -> ``QuantizedResult``
               (:class:`~audio_core.contracts.models.Quantizer`)
vocoder        spectrogram ``(batch, bins, frames)`` -> waveform ``(batch, channels, time)``
denoiser       ``x (batch, dim, frames), t (batch,), Conditioning | None`` -> like ``x``
conditioner    values (labels ``(batch,)``, texts, ``{key: (batch,)}``) -> ``Conditioning``
objective      noising path, training target and loss, time grid, prior
sampler        ``denoise, x_T (batch, dim, frames), grid, objective`` -> ``x_0``
loss           ``estimate, reference (batch, channels, time), mask (batch, time)``
               -> ``LossOutput``
discriminator  waveform ``(batch, channels, time)`` -> ``DiscriminatorOutput``
embedding      ``audio (channels, time), sample_rate`` -> ``(frames, dim)`` float64
dataset        ``dataset[i]`` -> dict with ``"audio"`` ``(channels, time)`` and metadata
=============  ==================================================================

Annotations here are strings: the module itself needs no torch (its package does).
"""

from __future__ import annotations

import dis
import inspect
import math
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from audio_core.errors import ComponentBuildError

if TYPE_CHECKING:
    import torch
    from torch import Tensor

    from audio_core.contracts.records import Conditioning, LossOutput


class ContractError(ComponentBuildError):
    """A built component lacks members its kind's contract requires."""


@runtime_checkable
class Exposes(Protocol):
    """Default of :meth:`intermediates`, shared by encoders, quantizers and decoders."""

    def intermediates(self) -> dict[str, Any]:
        """Values the last forward kept for losses (e.g. decoder stage outputs), emptied by
        the call; the autoencoder exposes them as ``output.intermediates["<role>.<key>"]``.
        Default: none."""
        return {}


@runtime_checkable
class Encoder(Exposes, Protocol):
    """Waveform ``(batch, channels, time)`` -> latent ``(batch, dim, frames)`` with
    ``frames = num_frames(time)``: frame ``i`` covers samples ``[i * hop_length, (i + 1) *
    hop_length)`` (the input is padded on the right to whole frames)."""

    #: Latent channels of the output.
    dim: int
    #: Waveform samples per latent frame.
    hop_length: int

    def forward(self, waveform: Tensor) -> Tensor: ...

    if TYPE_CHECKING:  # nn.Module's __call__ runs forward (and its hooks)
        def __call__(self, waveform: Tensor) -> Tensor: ...

    def num_frames(self, samples: int) -> int:
        """Frames for ``samples`` input samples. Default ``ceil(samples / hop_length)``."""
        return math.ceil(samples / self.hop_length)

    def frame_mask(self, mask: Tensor) -> Tensor:
        """Sample mask ``(batch, time)`` -> frame mask ``(batch, num_frames(time))``: a
        frame is real when any of its ``hop_length`` samples is."""
        from audio_core.audio.masks import frame_mask

        return frame_mask(mask, self.num_frames(mask.shape[-1]), self.hop_length)


@runtime_checkable
class Decoder(Exposes, Protocol):
    """Latent ``(batch, dim, frames)`` -> waveform ``(batch, channels, time')``; the model
    trims or pads it to the input length."""

    #: Latent channels it takes; ``None`` (default): the encoder's (or quantizer's) ``dim``.
    dim: int | None = None

    def forward(self, latent: Tensor) -> Tensor: ...

    if TYPE_CHECKING:
        def __call__(self, latent: Tensor) -> Tensor: ...


@runtime_checkable
class Vocoder(Protocol):
    """Spectrogram ``(batch, bins, frames)`` -> waveform ``(batch, channels, time)``, one
    frame per ``hop_length`` samples."""

    #: Waveform samples per spectrogram frame.
    hop_length: int

    def forward(self, spectrogram: Tensor) -> Tensor: ...


@runtime_checkable
class Denoiser(Protocol):
    """``forward(x, t, cond)``: ``x`` ``(batch, dim, frames)``, ``t`` ``(batch,)`` and a
    ``Conditioning`` (or ``None``) -> the objective's prediction, shaped like ``x``."""

    #: Channels of ``x``.
    dim: int
    #: ``frames`` must be a multiple of this (default 1); generation pads to it.
    length_multiple: int = 1
    #: ``False``: the output degrades past the training length (absolute positions);
    #: generating longer then logs a warning. Default ``True``.
    extrapolates_length: bool = True

    def forward(self, x: Tensor, t: Tensor, cond: Conditioning | None = None) -> Tensor: ...

    if TYPE_CHECKING:
        def __call__(self, x: Tensor, t: Tensor, cond: Conditioning | None = None
                     ) -> Tensor: ...


@runtime_checkable
class Conditioner(Protocol):
    """Values of batch key ``input_key`` (labels ``(batch,)`` or texts) -> ``Conditioning``
    (embeddings ``(batch, tokens, dim)`` + mask ``(batch, tokens)``), with a learned null
    embedding for classifier-free guidance.

    A conditioner reading several batch keys declares them as a tuple (``core.timing``:
    ``("seconds_start", "seconds_total")``); ``forward`` then takes a mapping from each of
    those keys to its batch values. A model may hold several conditioners
    (``model.conditioners``): their tokens are concatenated, so all share ``dim``."""

    #: Channels of the embeddings.
    dim: int
    #: Batch key(s) the values come from (``"label"``, ``"text"``, or a tuple of keys);
    #: ``None`` (default): none.
    input_key: str | tuple[str, ...] | None = None

    def forward(self, values: Any) -> Conditioning: ...

    if TYPE_CHECKING:
        def __call__(self, values: Any) -> Conditioning: ...

    def null(self, batch: int) -> Conditioning:
        """The null condition: embeddings ``(batch, tokens, dim)``."""
        ...

    def index(self, value: int | str) -> int:
        """The class index of a user-given value (``audio-core generate --class``).
        Default ``int(value)``."""
        return int(value)

    def parse_value(self, value: Any) -> Any:
        """One example's user-given value (``audio-core generate --cond NAME=VALUE`` gives
        a string; the Python API any value) as ``forward`` takes it per example (a label
        index, a text, a mapping of ``input_key`` -> number). Default: unchanged."""
        return value


@runtime_checkable
class Objective(Protocol):
    """A diffusion/flow objective: the noising path ``x_t = alpha(t) x0 + sigma(t) noise``,
    the training target and loss, the sampling grid and the prior. ``x0`` and ``noise``
    are ``(batch, dim, frames)``; ``t`` is ``(batch,)``."""

    t_max: float

    def alpha_sigma(self, t: Tensor) -> tuple[Tensor, Tensor]: ...

    def alpha_sigma_derivative(self, t: Tensor) -> tuple[Tensor, Tensor]: ...

    def sample_time(self, batch: int, *, size: int | None = None,
                    generator: torch.Generator | None = None) -> Tensor: ...

    def timesteps(self, steps: int, *, size: int | None = None) -> Tensor:
        """The sampling grid ``(steps + 1,)`` from ``t_max`` down to 0."""
        ...

    def training_example(self, x0: Tensor, noise: Tensor, t: Tensor) -> Any: ...

    def net_inputs(self, x_t: Tensor, t: Tensor) -> tuple[Tensor, Tensor]: ...

    def denoised(self, prediction: Tensor, x_t: Tensor, t: Tensor) -> Tensor: ...

    def loss(self, prediction: Tensor, target: Tensor, weight: Tensor,
             mask: Tensor | None = None) -> Tensor: ...

    def prior(self, shape: tuple[int, ...], *, generator: torch.Generator | None = None,
              size: int | None = None) -> Tensor: ...


@runtime_checkable
class Sampler(Protocol):
    """``sampler(denoise, x_T, grid, objective, generator=, progress=)`` -> ``x_0``:
    ``denoise(x_t, t)`` is a (guided) data prediction, ``x_T`` ``(batch, dim, frames)``,
    ``grid`` the objective's time grid ``(steps + 1,)``."""

    def __call__(self, denoise: Any, x_T: Tensor, grid: Tensor, objective: Objective, *,
                 generator: torch.Generator | None = None, progress: Any = None) -> Tensor: ...


@runtime_checkable
class Loss(Protocol):
    """``forward(estimate, reference, mask)``: waveforms ``(batch, channels, time)``, mask
    ``(batch, time)`` or ``None`` -> ``LossOutput`` (a scalar and logged parts), logged as
    ``loss/<name>``; the weight comes from the config."""

    name: str
    #: ``True``: also called with ``output=`` the model's training output record (e.g. to
    #: read ``output.intermediates``). Default ``False``.
    wants_output: bool = False

    def forward(self, estimate: Tensor, reference: Tensor,
                mask: Tensor | None = None) -> LossOutput: ...


@runtime_checkable
class Discriminator(Protocol):
    """Waveform ``(batch, channels, time)`` -> ``DiscriminatorOutput``: logits and feature
    maps (for feature matching), one list entry per sub-discriminator."""

    def forward(self, audio: Tensor) -> Any: ...


@runtime_checkable
class Embedding(Protocol):
    """An audio embedding for the Fréchet audio distance: ``embed(audio (channels, time),
    sample_rate)`` -> ``(frames, dim)`` float64 on the CPU."""

    name: str
    layer: str
    sample_rate: int

    def embed(self, audio: Tensor, sample_rate: int) -> Tensor: ...

    def describe(self) -> dict[str, object]:
        """What a score was computed with: name, layer, sample rate."""
        return {"name": self.name, "layer": self.layer, "sample_rate": self.sample_rate}


@runtime_checkable
class Dataset(Protocol):
    """Fixed-length crops: ``dataset[i]`` -> dict with ``"audio"`` ``(channels, time)``,
    ``"mask"`` ``(time,)`` and metadata; bad files are reported and skipped."""

    #: ``(unit, amount per item)`` for throughput logs, e.g. ``("audio_s", 1.0)`` for
    #: one-second crops; ``None`` (default): items.
    units_per_item: tuple[str, float] | None = None

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict[str, Any]: ...


@runtime_checkable
class Scheduled(Protocol):
    """A module with step-dependent values (scheduled weights): the task calls
    ``set_step(step)`` on every such (sub)module before each optimizer step."""

    def set_step(self, step: int) -> None: ...


#: Modules whose classes are bases of contracts, not parts of them.
_FOREIGN_BASES = {"builtins", "typing", "typing_extensions", "abc", "torch"}
_DUNDERS = {"__call__", "__len__", "__getitem__"}


def members(contract: type) -> dict[str, bool]:
    """Public members of ``contract`` -> whether each has a default (a value or method body
    in the contract), from the contract and its bases other than Python's and torch's own
    (``Protocol``, ``ABC``, ``nn.Module``)."""
    found: dict[str, bool] = {}
    for base in contract.__mro__:  # the contract's own members first
        if base.__module__.split(".")[0] in _FOREIGN_BASES:
            continue
        for name in [*vars(base).get("__annotations__", {}), *vars(base)]:
            if name in found or (name.startswith("_") and name not in _DUNDERS):
                continue
            value = vars(base).get(name)
            found[name] = value is not None and not _is_stub(value)
    return found


def _is_stub(value: Any) -> bool:
    """A function whose body does nothing (``...``, ``pass`` or a docstring only)."""
    code = getattr(getattr(value, "__func__", value), "__code__", None)
    if code is None:
        return False
    return all(ins.opname in _STUB_OPS and (ins.opname != "LOAD_CONST" or ins.argval is None)
               for ins in dis.get_instructions(code))


_STUB_OPS = {"RESUME", "NOP", "LOAD_CONST", "RETURN_VALUE", "RETURN_CONST"}


def missing_members(obj: Any, contract: type) -> list[str]:
    """Members of ``contract`` that ``obj`` lacks (methods named with ``()``)."""
    missing = []
    for name in members(contract):
        declared = _declared(contract, name)
        is_method = inspect.isroutine(declared) or isinstance(declared, classmethod)
        try:
            value = getattr(obj, name)
        except AttributeError:
            missing.append(f"{name}()" if is_method else name)
            continue
        if is_method and (not callable(value) or
                          getattr(value, "__name__", "") == "_forward_unimplemented"):
            missing.append(f"{name}()")
    return missing


def _declared(contract: type, name: str) -> Any:
    """The value ``name`` has in the first class of ``contract``'s MRO that defines it."""
    for base in contract.__mro__:
        if name in vars(base):
            return vars(base)[name]
    return None


def check_component(obj: Any, kind: str, name: str, origin: str = "",
                    path: str | None = None, *, contract: type | None) -> None:
    """Raise :class:`ContractError` naming ``name``, ``kind`` and every member of
    ``contract`` (the kind's, from the kind table) that ``obj`` lacks; nothing for kinds
    without a contract."""
    if contract is None:
        return
    missing = missing_members(obj, contract)
    if not missing:
        return
    defaulted = [m for m, has_default in members(contract).items() if has_default]
    hint = (f"; derive from {contract.__module__}.{contract.__qualname__} for the defaults "
            f"of {', '.join(defaulted)}" if defaulted else "")
    where = f" at {path}" if path else ""
    source = f" from {origin}" if origin else ""
    raise ContractError(
        f"{kind} '{name}'{where} ({type(obj).__name__}{source}) breaks the {kind} contract "
        f"({contract.__module__}.{contract.__qualname__}): missing {', '.join(missing)}"
        f"{hint}", path)

