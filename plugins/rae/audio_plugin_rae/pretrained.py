"""Build a ``transformers`` backbone from a local pretrained folder or a config (random init).

``pretrained`` is a folder written by ``save_pretrained`` or by ``hf download <id>
--local-dir <folder>`` (``huggingface_hub``'s CLI), loaded with no network call
(:func:`audio_core.models.pretrained.offline`). Anything else (a Hub id such as the base
presets' ``facebook/wav2vec2-base``, a path that does not exist) is an error naming
``model.encoder.params.pretrained`` and the value, before ``transformers`` runs, unless
``AUDIO_CORE_ALLOW_DOWNLOADS=1``: then it goes to ``from_pretrained`` as it is (the local
Hugging Face cache or the Hub).
``config`` is a dict of the model's config fields: a randomly initialised backbone, seeded
by the framework (``run.seed``), the same on every rank and at every load.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from audio_core.errors import AudioCoreError
from audio_core.models.pretrained import offline, resolve_pretrained

#: The config key of a frozen encoder's weights.
KEY = "model.encoder.params.pretrained"


class PretrainedLoadError(AudioCoreError, OSError):
    """The pretrained weights at the given path could not be loaded."""

    def __str__(self) -> str:
        return str(self.args[0])


def _from_pretrained(what: str, cls: Any, pretrained: str, key: str) -> nn.Module:
    """``cls.from_pretrained`` from a local folder (offline), or, with downloads allowed,
    from whatever ``pretrained`` names."""
    source, local = resolve_pretrained(pretrained, key)
    try:
        if local:
            with offline():
                return cls.from_pretrained(source, local_files_only=True)
        return cls.from_pretrained(source)
    except (OSError, ValueError) as exc:
        reason = " ".join(str(exc).split())
        raise PretrainedLoadError(
            f"{what}: cannot load pretrained weights from {key}='{pretrained}' ({reason})"
        ) from exc


def _transformers() -> Any:
    try:
        import transformers
    except ImportError as exc:  # a dependency of audio-plugin-rae: only a broken install
        raise ImportError("the rae encoders need `transformers` (a dependency of "
                          "audio-plugin-rae): pip install transformers") from exc
    transformers.logging.set_verbosity_error()
    return transformers


def load_backbone(what: str, model_class: str, config_class: str | None,
                  pretrained: str | None, config: dict[str, Any] | None,
                  key: str = KEY) -> nn.Module:
    """A ``transformers`` model in eval mode, fp32, without gradients.

    ``model_class``/``config_class`` name ``transformers`` classes (``"Wav2Vec2Model"``,
    ``"Wav2Vec2Config"``; ``config_class=None``: ``AutoConfig.for_model(config["model_type"])``
    and ``AutoModel``). Exactly one of ``pretrained`` and ``config`` must be given; errors
    name ``what`` (the component), the config ``key`` and the path.
    """
    if (pretrained is None) == (config is None):
        raise ValueError(f"{what}: set exactly one of `pretrained` (a local folder with "
                         f"pretrained weights, from save_pretrained or hf download) and "
                         f"`config` (model config fields, random init); got "
                         f"pretrained={pretrained!r}, config={config!r}")
    tf = _transformers()
    cls = getattr(tf, model_class)
    if pretrained is not None:
        model = _from_pretrained(what, cls, str(pretrained), key)
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
