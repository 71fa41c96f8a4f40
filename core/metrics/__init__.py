"""Audio quality metrics: SI-SDR, SNR, L1, (multi-resolution) mel distance (torch, batched).

Every metric takes (batch, time) or (batch, channels, time) signals on any device, computes in
float32 (float64 stays float64) and returns a Tensor[batch]. :func:`reconstruction_metrics`
bundles what the validation loop reports; :class:`MetricAccumulator` averages it over batches
and ranks.
"""

from audio_core.metrics.accumulator import MetricAccumulator
from audio_core.metrics.reconstruction import reconstruction_metrics
from audio_core.metrics.spectral import mel_distance, multi_resolution_mel_distance
from audio_core.metrics.waveform import l1_distance, si_sdr, snr

__all__ = [
    "MetricAccumulator",
    "l1_distance",
    "mel_distance",
    "multi_resolution_mel_distance",
    "reconstruction_metrics",
    "si_sdr",
    "snr",
]
