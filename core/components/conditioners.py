"""Conditioners: class labels / text / nothing -> :class:`Conditioning` (embeddings + mask).

Each holds a learned null embedding (``null(batch)``) for classifier-free guidance: it
stands for "no condition" (label -1, an empty or ``None`` text) and replaces dropped
conditions in training (:func:`audio_core.diffusion.guidance.drop_conditioning`).

- :class:`ClassEmbedding` (``core.class_embedding``): one token per label;
- :class:`ByteTextEncoder` (``core.byte_text``): UTF-8 bytes through a tiny transformer,
  one token per byte (offline, nothing to download);
- :class:`Unconditional` (``core.unconditional``): always the null embedding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from einops import rearrange, repeat
from torch import Tensor, nn

from audio_core.contracts import components as contracts
from audio_core.contracts.records import Conditioning


class Conditioner(nn.Module, contracts.Conditioner):
    """Base: ``forward(values) -> Conditioning`` with embeddings ``(batch, tokens, dim)``.

    ``input_key`` is the batch key the values come from (``"label"``, ``"text"``, or
    ``None``); ``null_embedding`` ``(1, dim)`` is learned.
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
