"""Contracts: what every component kind and every model promises, in code.

- :mod:`audio_core.contracts.components`: one ``typing.Protocol`` per component kind
  (encoder, decoder, quantizer, ..., dataset) and :func:`check_component`, which the
  registry runs on every component it builds;
- :mod:`audio_core.contracts.models`: the model ABCs (``AudioModel``, ``Autoencoder``,
  ``Codec``, ``Generator``, quantizers);
- :mod:`audio_core.contracts.records`: the records components exchange
  (``QuantizedResult``, ``Conditioning``, ``LossOutput``, ...).

This package sits just above the foundation (errors, audio, config schema): it imports
nothing from components, models, training or apps.
"""
