"""Build a ``transformers`` backbone from a local pretrained folder or a config (random init).

Nothing is downloaded at training time on machines without network access: ``pretrained``
is a folder written by ``save_pretrained`` or by ``huggingface-cli download <id>
--local-dir <folder>`` (a hub id also works where the hub is reachable or cached).
``config`` is a dict of the model's config fields: a randomly initialised backbone, seeded
by the framework (``run.seed``), the same on every rank and at every load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn


class PretrainedLoadError(OSError):
    """The pretrained weights at the given path could not be loaded."""


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
                         f"pretrained weights, from save_pretrained or huggingface-cli "
                         f"download) and `config` (model config fields, random init); got "
                         f"pretrained={pretrained!r}, config={config!r}")
    tf = _transformers()
    cls = getattr(tf, model_class)
    if pretrained is not None:
        where = Path(pretrained).expanduser()
        source = str(where) if where.exists() else str(pretrained)
        try:
            model = cls.from_pretrained(source)
        except (OSError, ValueError) as exc:
            raise PretrainedLoadError(
                f"{what}: cannot load pretrained weights from '{pretrained}' ({exc}). Weights "
                f"are not downloaded during training here: download them once, e.g. "
                f"`huggingface-cli download facebook/wav2vec2-base --local-dir DIR`, and set "
                f"pretrained: DIR") from exc
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
