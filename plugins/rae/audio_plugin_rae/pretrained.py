"""Build a ``transformers`` backbone from a local pretrained folder or a config (random init).

Nothing is ever downloaded: ``pretrained`` is a folder written by ``save_pretrained`` or by
``hf download <id> --local-dir <folder>`` (``huggingface_hub``'s CLI). A hub id (the base
presets' default, e.g. ``facebook/wav2vec2-base``) loads only from the local Hugging Face
cache; otherwise the error says how to fetch it. A path that does not exist is an error
naming it.
``config`` is a dict of the model's config fields: a randomly initialised backbone, seeded
by the framework (``run.seed``), the same on every rank and at every load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn


class PretrainedLoadError(OSError):
    """The pretrained weights at the given path could not be loaded."""


def _how_to_fetch(repo: str) -> str:
    return (f"Nothing is downloaded during training: fetch the weights once where the hub is "
            f"reachable, `hf download {repo} --local-dir DIR`, and set "
            f"model.encoder.params.pretrained=DIR")


def _looks_like_hub_id(text: str) -> bool:
    """``owner/name``: one slash, not a path (``/``, ``.``, ``~`` or a drive first)."""
    return text.count("/") == 1 and not text.startswith(("/", ".", "~")) and ":" not in text


def _from_pretrained(what: str, cls: Any, pretrained: str) -> nn.Module:
    """``cls.from_pretrained`` from a local folder, or from the local cache for a hub id;
    never from the network."""
    where = Path(pretrained).expanduser()
    hub_id = not where.exists()
    if hub_id and not _looks_like_hub_id(pretrained):
        raise PretrainedLoadError(
            f"{what}: the pretrained folder '{pretrained}' does not exist. "
            f"{_how_to_fetch('facebook/wav2vec2-base')}")
    try:  # a hub id: from the local Hugging Face cache only
        return cls.from_pretrained(pretrained if hub_id else str(where), local_files_only=True)
    except (OSError, ValueError) as exc:
        if hub_id:
            raise PretrainedLoadError(
                f"{what}: pretrained '{pretrained}' is a Hugging Face Hub id, not a local "
                f"folder, and it is not in the local cache. {_how_to_fetch(pretrained)}"
            ) from exc
        raise PretrainedLoadError(
            f"{what}: cannot load pretrained weights from '{pretrained}' ({exc}). "
            f"{_how_to_fetch('facebook/wav2vec2-base')}") from exc


def _transformers() -> Any:
    try:
        import transformers
    except ImportError as exc:  # a dependency of audio-plugin-rae: only a broken install
        raise ImportError("the rae encoders need `transformers` (a dependency of "
                          "audio-plugin-rae): pip install transformers") from exc
    transformers.logging.set_verbosity_error()
    return transformers


def load_backbone(what: str, model_class: str, config_class: str | None,
                  pretrained: str | None, config: dict[str, Any] | None) -> nn.Module:
    """A ``transformers`` model in eval mode, fp32, without gradients.

    ``model_class``/``config_class`` name ``transformers`` classes (``"Wav2Vec2Model"``,
    ``"Wav2Vec2Config"``; ``config_class=None``: ``AutoConfig.for_model(config["model_type"])``
    and ``AutoModel``). Exactly one of ``pretrained`` and ``config`` must be given; errors
    name ``what`` (the component) and the path.
    """
    if (pretrained is None) == (config is None):
        raise ValueError(f"{what}: set exactly one of `pretrained` (a local folder with "
                         f"pretrained weights, from save_pretrained or hf download) and "
                         f"`config` (model config fields, random init); got "
                         f"pretrained={pretrained!r}, config={config!r}")
    tf = _transformers()
    cls = getattr(tf, model_class)
    if pretrained is not None:
        model = _from_pretrained(what, cls, str(pretrained))
    else:
        fields = dict(config)
        if config_class is None:
            kind = fields.pop("model_type", None)
            if kind is None:
                raise ValueError(f"{what}: config needs `model_type` (e.g. dinov2, "
                                 f"dinov2_with_registers) to build a random-init backbone")
            cfg = tf.AutoConfig.for_model(kind, **fields)
        else:
            cfg = getattr(tf, config_class)(**fields)
        model = cls.from_config(cfg) if config_class is None else cls(cfg)
    model = model.float().eval()
    model.requires_grad_(False)
    return model
