"""Conditioners: class labels / text / nothing -> :class:`Conditioning` (embeddings + mask).

Each holds a learned null embedding (``null(batch)``) for classifier-free guidance: it
stands for "no condition" (label -1, an empty or ``None`` text) and replaces dropped
conditions in training (:func:`audio_core.diffusion.guidance.drop_conditioning`).

- :class:`ClassEmbedding` (``core.class_embedding``): one token per label;
- :class:`ByteTextEncoder` (``core.byte_text``): UTF-8 bytes through a tiny transformer,
  one token per byte (offline, nothing to download);
- :class:`Unconditional` (``core.unconditional``): always the null embedding;
- :class:`TimingConditioner` (``core.timing``): ``seconds_start`` and ``seconds_total``
  (Stable Audio style) -> two tokens from learned Fourier features.

A model holds several of them by name (``model.conditioners``) and concatenates their
tokens (:mod:`audio_core.models.conditioning`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from einops import rearrange, repeat
from torch import Tensor, nn

from audio_core.contracts import components as contracts
from audio_core.contracts.records import Conditioning


class Conditioner(nn.Module, contracts.Conditioner):
    """Base: ``forward(values) -> Conditioning`` with embeddings ``(batch, tokens, dim)``.

    ``input_key`` is the batch key the values come from (``"label"``, ``"text"``, a tuple
    of keys, or ``None``); ``null_embedding`` ``(1, dim)`` is learned.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        if not isinstance(dim, int) or dim < 1:
            raise ValueError(f"conditioner dim must be an int >= 1, got {dim!r}")
        self.dim = dim
        self.null_embedding = nn.Parameter(torch.randn(1, dim) * 0.02)

    @property
    def device(self) -> torch.device:
        return self.null_embedding.device

    def null(self, batch: int) -> Conditioning:
        """The null condition: embeddings ``(batch, 1, dim)``, mask all True."""
        emb = repeat(self.null_embedding, "1 d -> b 1 d", b=batch)
        return Conditioning(emb, torch.ones(batch, 1, dtype=torch.bool, device=self.device))

    def parse_value(self, value: Any) -> Any:
        """One example's user-given value (``generate --cond NAME=VALUE``, a string, or a
        Python value) as ``forward`` takes it per example; the base keeps it as is."""
        return value


class ClassEmbedding(Conditioner):
    """Class labels ``(batch,)`` -> one learned token each, ``(batch, 1, dim)``; label -1
    means "no label" and gives the null embedding.

    Params: ``num_classes`` (>= 1) or ``classes`` (names; ``num_classes = len(classes)``),
    ``dim``. ``forward`` also takes a list of names or indices (see :meth:`index`).
    """

    input_key = "label"

    def __init__(self, num_classes: int | None = None, classes: Sequence[str] | None = None,
                 dim: int = 128) -> None:
        super().__init__(dim)
        if classes is not None:
            classes = [str(c) for c in classes]
            if len(set(classes)) != len(classes) or not classes:
                raise ValueError(f"class_embedding classes must be distinct and non-empty, "
                                 f"got {classes}")
            if num_classes is not None and num_classes != len(classes):
                raise ValueError(f"class_embedding num_classes={num_classes} does not match "
                                 f"the {len(classes)} names in classes")
            num_classes = len(classes)
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError("class_embedding needs num_classes (an int >= 1) or classes (a "
                             f"list of names), got num_classes={num_classes!r}")
        self.num_classes, self.classes = num_classes, classes
        self.embedding = nn.Embedding(num_classes, dim)

    def index(self, label: int | str) -> int:
        """The class index of a name or an int; -1 (no label) passes through."""
        if isinstance(label, str) and self.classes is not None and label in self.classes:
            return self.classes.index(label)
        if isinstance(label, int | torch.Tensor) and not isinstance(label, bool):
            value = int(label)
            if -1 <= value < self.num_classes:
                return value
        valid = (f"names {self.classes}" if self.classes is not None else "no names")
        raise ValueError(f"unknown class {label!r}: use an index in [0, {self.num_classes}) "
                         f"(-1 = no label) or one of the class {valid}")

    def parse_value(self, value: Any) -> int:
        """A class name, an index, or an index written as a string (``"3"``) -> the index."""
        if isinstance(value, str) and (self.classes is None or value not in self.classes) \
                and value.strip().lstrip("-").isdigit():
            value = int(value)
        return self.index(value)

    def labels(self, values: Tensor | Sequence[int | str]) -> Tensor:
        """``values`` as a LongTensor ``(batch,)`` on this module's device, checked."""
        if isinstance(values, Tensor):
            if values.ndim != 1 or values.is_floating_point():
                raise ValueError(f"class labels must be an integer tensor (batch,), got "
                                 f"{values.dtype} {tuple(values.shape)}")
            bad = values[(values < -1) | (values >= self.num_classes)]
            if bad.numel():
                self.index(int(bad[0]))  # raises, naming the value and the valid range
            return values.to(self.device, torch.long)
        return torch.tensor([self.index(v) for v in values], dtype=torch.long,
                            device=self.device)

    def forward(self, values: Tensor | Sequence[int | str]) -> Conditioning:
        labels = self.labels(values)
        emb = self.embedding(labels.clamp_min(0))
        emb = torch.where(rearrange(labels >= 0, "b -> b 1"), emb, self.null_embedding)
        mask = torch.ones(len(labels), 1, dtype=torch.bool, device=self.device)
        return Conditioning(rearrange(emb, "b d -> b 1 d"), mask)


class ByteTextEncoder(Conditioner):
    """Texts -> UTF-8 bytes -> learned byte + position embeddings -> ``layers`` transformer
    encoder layers -> ``(batch, tokens, dim)``, ``tokens`` = the longest text in bytes
    (at most ``max_tokens``; longer texts are truncated); the mask is False on padding. An
    empty or ``None`` text gives the null embedding (one real token).
    """

    input_key = "text"

    def __init__(self, dim: int = 128, max_tokens: int = 128, layers: int = 1, heads: int = 4,
                 dropout: float = 0.0) -> None:
        super().__init__(dim)
        if max_tokens < 1 or layers < 1 or heads < 1 or dim % heads:
            raise ValueError(f"byte_text needs max_tokens, layers, heads >= 1 and dim divisible "
                             f"by heads; got max_tokens={max_tokens}, layers={layers}, "
                             f"heads={heads}, dim={dim}")
        self.max_tokens = max_tokens
        self.bytes = nn.Embedding(256, dim)
        self.positions = nn.Parameter(torch.randn(max_tokens, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=4 * dim, dropout=dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def tokenize(self, texts: Sequence[str | None]) -> tuple[Tensor, Tensor]:
        """Byte ids ``(batch, tokens)`` and mask ``(batch, tokens)`` (empty rows all False)."""
        encoded = [(t or "").encode("utf-8")[: self.max_tokens] for t in texts]
        tokens = max(1, *(len(b) for b in encoded)) if encoded else 1
        ids = torch.zeros(len(encoded), tokens, dtype=torch.long)
        mask = torch.zeros(len(encoded), tokens, dtype=torch.bool)
        for row, data in enumerate(encoded):
            ids[row, : len(data)] = torch.tensor(list(data), dtype=torch.long)
            mask[row, : len(data)] = True
        return ids.to(self.device), mask.to(self.device)

    def parse_value(self, value: Any) -> str:
        """The text of one example (``None`` -> ``""``, the null embedding)."""
        return "" if value is None else str(value)

    def forward(self, values: Sequence[str | None]) -> Conditioning:
        if isinstance(values, str) or not isinstance(values, Sequence):
            raise TypeError(f"byte_text takes a list of strings, got {type(values).__name__}")
        ids, mask = self.tokenize(values)
        empty = ~mask.any(1)
        attend = mask | rearrange(empty, "b -> b 1")  # keep empty rows finite; replaced below
        h = self.bytes(ids) + self.positions[: ids.shape[1]]
        h = self.norm(self.encoder(h, src_key_padding_mask=~attend))
        h = h * rearrange(mask, "b n -> b n 1")
        null = self.null(len(values))
        first = torch.zeros_like(mask)
        first[:, 0] = True
        h = torch.where(rearrange(empty, "b -> b 1 1"),
                        nn.functional.pad(null.embeddings, (0, 0, 0, h.shape[1] - 1)), h)
        return Conditioning(h, torch.where(rearrange(empty, "b -> b 1"), first, mask))


class Unconditional(Conditioner):
    """No condition: every example gets the null embedding ``(batch, 1, dim)``.
    ``forward`` takes anything with a length (or a batch size)."""

    input_key = None

    def __init__(self, dim: int = 64) -> None:
        super().__init__(dim)

    def forward(self, values: Any) -> Conditioning:
        batch = values if isinstance(values, int) else len(values)
        return self.null(batch)


class TimingConditioner(Conditioner):
    """Stable Audio style timing: ``seconds_start`` (where the crop starts in its file) and
    ``seconds_total`` (the file's duration), in seconds -> two tokens ``(batch, 2, dim)``.

    Each value is clamped to ``[0, max_seconds]`` and scaled to ``[0, 1]``, then ``[v,
    sin(2 pi v w), cos(2 pi v w)]`` with ``features // 2`` learned frequencies ``w`` per key
    -> a linear layer to ``dim`` (one per key). The mask is all True. ``forward`` takes a
    mapping ``{"seconds_start": (batch,), "seconds_total": (batch,)}`` (tensors or lists of
    numbers); an example whose ``seconds_total`` is NaN or negative (no timing known) gets
    the null embedding in both tokens (so every call reaches it, as data parallelism needs).
    """

    input_key: ClassVar[tuple[str, ...]] = ("seconds_start", "seconds_total")

    def __init__(self, dim: int = 128, max_seconds: float = 512.0, features: int = 32) -> None:
        super().__init__(dim)
        if not (isinstance(max_seconds, int | float) and math.isfinite(max_seconds)
                and max_seconds > 0) or features < 2 or features % 2:
            raise ValueError(f"timing needs max_seconds > 0 and an even features >= 2; got "
                             f"max_seconds={max_seconds!r}, features={features!r}")
        self.max_seconds = float(max_seconds)
        self.frequencies = nn.Parameter(torch.randn(len(self.input_key), features // 2))
        self.projections = nn.ModuleList(nn.Linear(features + 1, dim)
                                         for _ in self.input_key)

    def parse_value(self, value: Any) -> dict[str, float]:
        """One example's timing: a number (``seconds_total``, start 0), a mapping with both
        keys (``seconds_start`` defaults to 0), or the string ``"seconds_start=S,
        seconds_total=T"`` (either order; a bare number is ``seconds_total``)."""
        if isinstance(value, str):
            value = _parse_timing(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = {"seconds_total": value}
        if not isinstance(value, Mapping):
            raise ValueError(f"timing takes seconds_total (a number) or "
                             f"{{seconds_start, seconds_total}}, got {value!r}")
        unknown = sorted(set(value) - set(self.input_key))
        if unknown or "seconds_total" not in value:
            raise ValueError(f"timing takes keys {', '.join(self.input_key)} (seconds_total "
                             f"required), got {sorted(value)}")
        out = {"seconds_start": float(value.get("seconds_start", 0.0)),
               "seconds_total": float(value["seconds_total"])}
        if not all(math.isfinite(v) and v >= 0 for v in out.values()):
            raise ValueError(f"timing values must be finite seconds >= 0, got {out}")
        return out

    def forward(self, values: Mapping[str, Tensor | Sequence[float]]) -> Conditioning:
        if not isinstance(values, Mapping) or set(values) != set(self.input_key):
            got = sorted(values) if isinstance(values, Mapping) else type(values).__name__
            raise ValueError(f"timing takes a mapping with keys {', '.join(self.input_key)}, "
                             f"got {got}")
        tokens = []
        total = torch.as_tensor(values["seconds_total"], dtype=torch.float32)
        unknown = (~torch.isfinite(total) | (total < 0)).to(self.device)
        for i, key in enumerate(self.input_key):
            seconds = torch.as_tensor(values[key], dtype=torch.float32, device=self.device)
            if seconds.ndim != 1 or seconds.shape != total.shape:
                raise ValueError(f"timing '{key}' must be (batch,) like seconds_total, got "
                                 f"{tuple(seconds.shape)}")
            v = torch.nan_to_num(seconds).clamp(0, self.max_seconds) / self.max_seconds
            angles = 2 * math.pi * rearrange(v, "b -> b 1") * self.frequencies[i]
            features = torch.cat([rearrange(v, "b -> b 1"), angles.sin(), angles.cos()], -1)
            tokens.append(self.projections[i](features.to(self.null_embedding.dtype)))
        emb = torch.stack(tokens, dim=1)
        emb = torch.where(rearrange(unknown, "b -> b 1 1"), self.null_embedding, emb)
        return Conditioning(emb, torch.ones(emb.shape[:2], dtype=torch.bool,
                                            device=self.device))


def _parse_timing(text: str) -> float | dict[str, float]:
    """``"10"`` -> 10.0; ``"seconds_start=2,seconds_total=10"`` -> a dict."""
    try:
        if "=" not in text:
            return float(text)
        pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
        return {k.strip(): float(v) for k, v in pairs}
    except ValueError:
        raise ValueError(f"timing value {text!r}: write seconds_total as a number (e.g. 10) "
                         f"or seconds_start=S,seconds_total=T") from None
