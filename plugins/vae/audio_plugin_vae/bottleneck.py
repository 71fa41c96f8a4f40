"""``vae.gaussian``: the VAE's KL bottleneck with a scheduled weight and free bits, core's
:class:`~audio_core.components.bottlenecks.GaussianBottleneck` (see its module docstring
for the parameters, the loss and the metrics)."""

from audio_core.components.bottlenecks import SCALES, GaussianBottleneck, gaussian_kl

__all__ = ["SCALES", "GaussianBottleneck", "gaussian_kl"]
