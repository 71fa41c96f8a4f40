"""Residual vector quantization (``core.rvq``).

- :mod:`~audio_core.components.rvq.residual`: :class:`ResidualVQ`, the quantizer
  (straight-through, commitment loss, quantizer dropout, codec contract);
- :mod:`~audio_core.components.rvq.codebook`: :class:`EMACodebook`, one stage (EMA
  updates, k-means init, dead-code replacement, rank synchronisation);
- :mod:`~audio_core.components.rvq.kmeans`: k-means++ / Lloyd's k-means;
- :mod:`~audio_core.components.rvq.som`: the self-organising-map neighbourhood.
"""

from audio_core.components.rvq.codebook import EMACodebook
from audio_core.components.rvq.residual import ResidualVQ

__all__ = ["EMACodebook", "ResidualVQ"]
