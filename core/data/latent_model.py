"""What a dataset of pre-encoded latents (``core.latents``, latent ``core.shards``) knows of
the model that encoded them: the ``"model"`` record of its index."""

from __future__ import annotations

from typing import Any

from audio_core.data.base import DatasetError


class LatentModelMixin:
    """``fingerprint`` and ``latent_dim`` read from ``self.model`` (the index's ``"model"``
    record: ``fingerprint``, ``frame_rate``, ``latent_dim`` ...), and the fingerprint check."""

    model: dict[str, Any]

    @property
    def fingerprint(self) -> str:
        return str(self.model["fingerprint"])

    @property
    def latent_dim(self) -> int:
        return int(self.model["latent_dim"])

    def check_fingerprint(self, expected: str | None, what: str) -> None:
        """Raise :class:`DatasetError` naming ``what`` (e.g. ``"latent shards"``) when
        ``expected`` is given and is not this model's fingerprint."""
        if expected is not None and expected != self.fingerprint:
            raise DatasetError(f"{what} come from a model with fingerprint "
                               f"{self.fingerprint}, expected {expected}")
