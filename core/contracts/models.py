"""The model contracts: what an export holds and what every inference command runs.

A *model* is a whole inference pipeline, built from a run config by its registered class
(``from_config``), never by a training task: losses and discriminators are not part of it.
Three abstract bases state what commands may call, with the shapes:

- :class:`Autoencoder`: waveform <-> continuous latent (``audio-core reconstruct``,
  ``latents``, ``stats``);
- :class:`Codec`: waveform <-> integer codes on a frame grid (``encode``, ``decode``,
  token files);
- :class:`Generator`: conditioning -> waveform (``audio-core generate``).

A model may be several of them (a residual-VQ codec is an autoencoder and a codec). Every
model derives from :class:`AudioModel`, which also lets it hold *frozen* modules (a
pretrained encoder, a stage-1 model) outside its parameters and state dict: they are never
trained, checkpointed or exported; ``from_config`` rebuilds them from their reference.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from audio_core.contracts.components import Exposes

ProgressFn = Callable[[int, int], None]


class AudioModel(nn.Module, ABC):
    """Base of every model: ``sample_rate`` (Hz) and ``channels`` of the audio it handles.

    ``slots`` names the ``model.*`` config fields the class builds from (``True``:
    required), so ``audio-core config validate`` can check a run builds what it names.
    ``config`` is set by :func:`audio_core.load` to the run config the model came from.
    """

    #: ``model.<slot>`` config fields this model builds, and whether each is required.
    slots: ClassVar[dict[str, bool]] = {}

    sample_rate: int
    channels: int

    def __init__(self, *, sample_rate: int, channels: int = 1) -> None:
        super().__init__()
        self.sample_rate, self.channels = int(sample_rate), int(channels)
        self._frozen: dict[str, nn.Module] = {}

    @classmethod
    @abstractmethod
    def from_config(cls, cfg: Any, registry: Any, **params: Any) -> AudioModel:
        """Build the model from run config ``cfg`` (its ``model.<slot>`` components, with
        ``model.params`` as ``params``), through ``registry``."""

    # -- frozen parts -------------------------------------------------------------------
    def add_frozen(self, name: str, module: nn.Module) -> nn.Module:
        """Hold ``module`` as attribute ``name`` outside parameters, buffers and the state
        dict, in eval mode with gradients off. It stays fp32 and follows the device of the
        inputs through :meth:`frozen_on`."""
        module.eval()
        module.requires_grad_(False)
        self._frozen[name] = module
        object.__setattr__(self, name, module)
        return module

    def frozen_modules(self) -> Iterator[tuple[str, nn.Module]]:
        yield from self._frozen.items()

    def frozen_on(self, name: str, device: torch.device) -> Any:
        """Frozen module ``name`` on ``device`` (moved on first use there)."""
        module = self._frozen[name]
        tensor = next(module.parameters(), None)
        if tensor is None:
            tensor = next(module.buffers(), None)
        if tensor is not None and tensor.device != torch.device(device):
            module.to(device)
        return module

    def train(self, mode: bool = True) -> AudioModel:
        super().train(mode)
        for module in self._frozen.values():
            module.eval()
        return self

    def _place(self, x: Tensor) -> Tensor:
        """``x`` on this model's device, floating tensors in its parameter dtype."""
        p = next(self.parameters(), None)
        if p is None:
            return x
        return x.to(p.device, p.dtype if x.is_floating_point() else x.dtype)


class Reconstructor(AudioModel):
    """A model that maps a waveform to its reconstruction (``audio-core reconstruct``)."""

    @abstractmethod
    def reconstruct(self, waveform: Tensor) -> Tensor:
        """Waveform ``(batch, channels, time)`` -> reconstruction, same shape."""


class Autoencoder(Reconstructor):
    """Waveform <-> continuous latent ``(batch, latent_dim, frames)``, one frame per
    ``hop_length`` samples (``frames = ceil(time / hop_length)``)."""

    #: Sampler steps :meth:`decode` takes by default when it samples (``decode(latent,
    #: length, steps=...)``, e.g. a diffusion decoder); ``None`` (default): one pass.
    decode_steps: int | None = None

    @property
    @abstractmethod
    def hop_length(self) -> int:
        """Waveform samples per latent frame."""

    @property
    @abstractmethod
    def latent_dim(self) -> int:
        """Channels of the latent."""

    @property
    def frame_rate(self) -> float:
        """Latent frames per second."""
        return self.sample_rate / self.hop_length

    def num_frames(self, samples: int) -> int:
        return math.ceil(samples / self.hop_length)

    @abstractmethod
    def encode(self, waveform: Tensor) -> Tensor:
        """Waveform ``(batch, channels, time)`` -> latent ``(batch, latent_dim, frames)``:
        what :meth:`decode` takes (quantized for a codec, the posterior mean for a VAE,
        normalised features for a frozen encoder)."""

    @abstractmethod
    def decode(self, latent: Tensor, length: int | None = None) -> Tensor:
        """Latent ``(batch, latent_dim, frames)`` -> waveform ``(batch, channels, length)``
        (default ``frames * hop_length``)."""

    def features(self, waveform: Tensor) -> Tensor:
        """Raw latent ``(batch, latent_dim, frames)``, before a normalisation the model
        defines from its statistics (what ``audio-core stats`` measures). Default:
        :meth:`encode`."""
        return self.encode(waveform)

    @torch.no_grad()
    def reconstruct(self, waveform: Tensor) -> Tensor:
        return self.decode(self.encode(waveform), waveform.shape[-1])


@dataclass(frozen=True)
class CodecSpec:
    """The code grid of a codec: ``num_codebooks`` rows, one column per ``hop_length``
    samples, ``codebook_bits`` bits per code. ``scalable``: any leading subset of the rows
    decodes (residual codebooks: lower bitrates); otherwise all rows are needed."""

    hop_length: int
    num_codebooks: int
    codebook_bits: int
    scalable: bool = True

    def __getitem__(self, key: str) -> Any:  # spec["hop_length"], as the old dict did
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)


class Codec(Reconstructor):
    """Waveform <-> integer codes ``(batch, rows, frames)`` (token files, bitrates)."""

    @property
    def has_codes(self) -> bool:
        """False when this instance has no discrete bottleneck (e.g. an autoencoder class
        that is a codec only with a quantizer configured)."""
        return True

    @abstractmethod
    def codec_spec(self) -> CodecSpec:
        """The code grid (see :class:`CodecSpec`)."""

    @abstractmethod
    def encode_codes(self, waveform: Tensor, n_quantizers: int | None = None) -> Tensor:
        """Waveform ``(batch, channels, time)`` -> codes int64 ``(batch, n, ceil(time /
        hop_length))`` with ``n = n_quantizers`` or every row."""

    @abstractmethod
    def decode_codes(self, codes: Tensor, length: int | None = None) -> Tensor:
        """Codes ``(batch, n, frames)`` -> waveform ``(batch, channels, length)`` (default
        ``frames * hop_length``)."""


class Generator(AudioModel):
    """Conditioning -> new audio (``audio-core generate``)."""

    #: batch keys the conditioners read (``("label",)``, ``("text",)``; empty: none).
    condition_keys: tuple[str, ...] = ()

    @property
    def conditions(self) -> dict[str, tuple[str, ...]]:
        """Conditioner NAME -> the batch keys it reads: the names ``generate``'s
        ``conditioning={NAME: value}`` and ``audio-core generate --cond NAME=VALUE`` take.
        Default: none."""
        return {}

    #: Default sampler steps and guidance scale of :meth:`generate` (``None``: it has none).
    steps: int | None = None
    guidance: float | None = None
    #: Default length in seconds of :meth:`generate`'s clips (``None``: the model decides).
    seconds: float | None = None

    @property
    def decode_steps(self) -> int | None:
        """Default steps of a stage-1 decoder that samples (``None``: none)."""
        return None

    def check_decode_steps(self, decode_steps: int | None) -> None:
        """``ValueError`` unless ``decode_steps`` (``generate(..., decode_steps=)``) applies
        to this model; by default only ``None`` does."""
        if decode_steps is not None:
            raise ValueError(f"decode_steps={decode_steps} does not apply: "
                             f"{type(self).__name__} has no stage-1 decoder that samples")

    @abstractmethod
    def generate(self, conditioning: Any = None, num_samples: int = 1, steps: int | None = None,
                 guidance: float | None = None, seed: int = 0, seconds: float | None = None,
                 progress: ProgressFn | None = None) -> Tensor:
        """``num_samples`` waveforms ``(num_samples, channels, round(seconds *
        sample_rate))``.

        ``conditioning``: ``None`` (unconditional), a class index or name, a text, or a
        list of one per sample; with several conditioners a mapping NAME -> such a value
        (see :attr:`conditions`; a conditioner left out gets its null embedding).
        ``steps``/``guidance`` default to the export's sampler settings; ``seed`` fixes
        the result; ``progress(step, total)`` is called per step.
        """


class Quantizer(nn.Module, Exposes, ABC):
    """The quantizer contract, a bottleneck: latent ``(batch, dim, frames)`` ->
    :class:`~audio_core.contracts.records.QuantizedResult` (quantized latent, codes or ``None``,
    auxiliary loss, metrics); ``intermediates()`` defaults to none (see
    :class:`~audio_core.contracts.components.Exposes`)."""

    @abstractmethod
    def forward(self, latent: Tensor) -> Any:
        ...


class DiscreteQuantizer(Quantizer):
    """A quantizer with integer codes: ``num_codebooks`` rows of ``codebook_bits``-bit codes
    per frame; ``scalable`` when any leading subset of rows decodes (residual codebooks)."""

    num_codebooks: int
    codebook_bits: int
    scalable: bool = True

    @abstractmethod
    def forward(self, latent: Tensor, n_quantizers: int | None = None) -> Any:
        """As :meth:`Quantizer.forward`; ``n_quantizers`` uses the first rows only."""

    @abstractmethod
    def encode(self, latent: Tensor, n_quantizers: int | None = None) -> Tensor:
        """Latent ``(batch, dim, frames)`` -> codes int64 ``(batch, n, frames)``."""

    @abstractmethod
    def decode(self, codes: Tensor) -> Tensor:
        """Codes ``(batch, n, frames)`` -> quantized latent ``(batch, dim, frames)``."""


def is_codec(model: Any) -> bool:
    """True when ``model`` implements :class:`Codec` and has discrete codes."""
    return isinstance(model, Codec) and model.has_codes


def capabilities(model: Any) -> list[str]:
    """The contracts ``model`` implements: ``autoencoder``, ``codec``, ``reconstruct``,
    ``generator``."""
    caps = []
    if isinstance(model, Autoencoder):
        caps.append("autoencoder")
    if is_codec(model):
        caps.append("codec")
    if isinstance(model, Reconstructor):
        caps.append("reconstruct")
    if isinstance(model, Generator):
        caps.append("generator")
    return caps
