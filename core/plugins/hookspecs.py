"""Hook specifications: one hook per component kind.

Every hook receives a :class:`~audio_core.plugins.registry.KindRegistry` bound to
its kind and to the calling plugin's namespace. A plugin registers factories::

    from audio_core.plugins import hookimpl

    @hookimpl
    def audio_core_register_encoders(registry):
        registry.register("transformer", "audio_plugin_bsq.encoder:TransformerEncoder")

Targets given as ``"module:attribute"`` strings are imported on first use, so
listing plugins never imports torch.
"""

from __future__ import annotations

import pluggy

from audio_core.plugins.kinds import BUILTIN_KINDS

PROJECT = "audio_core"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

#: Core's component kind -> the hook that registers it (display order). Plugins add kinds
#: through :func:`audio_core_register_kinds`; the plugin manager's ``kinds`` holds them all.
KIND_HOOKS: dict[str, str] = {k.name: k.hook for k in BUILTIN_KINDS}
KINDS: tuple[str, ...] = tuple(KIND_HOOKS)


@hookspec
def audio_core_register_kinds(kinds):
    """Register new component kinds: ``kinds.register(name, contract="module:Protocol",
    hook="audio_core_register_<name>s", description=...)`` (:mod:`audio_core.plugins.kinds`).
    Called for every plugin before any component is registered, so a plugin may register
    components of a kind another plugin adds."""



@hookspec
def audio_core_register_models(registry):
    """Register models: whole inference pipelines (:mod:`audio_core.contracts.models`) that
    an export holds, each a class with ``from_config(cfg, registry, **params)``."""


@hookspec
def audio_core_register_encoders(registry):
    """Register encoders: waveform or spectrogram in, latent ``(batch, dim, frames)`` out."""


@hookspec
def audio_core_register_quantizers(registry):
    """Register quantizers/bottlenecks returning a ``QuantizedResult``."""


@hookspec
def audio_core_register_decoders(registry):
    """Register decoders: latent ``(batch, dim, frames)`` in, waveform
    ``(batch, channels, time)`` out."""


@hookspec
def audio_core_register_vocoders(registry):
    """Register vocoders: spectrogram ``(batch, bins, frames)`` in, waveform out."""


@hookspec
def audio_core_register_denoisers(registry):
    """Register denoisers: networks ``net(x, t, conditioning)`` with ``x``
    ``(batch, dim, frames)``, ``t`` ``(batch,)`` and a ``Conditioning`` (or ``None``),
    returning the objective's prediction shaped like ``x``."""


@hookspec
def audio_core_register_conditioners(registry):
    """Register conditioners: class labels / text / nothing -> ``Conditioning``
    (embeddings + mask), with a learned null embedding for classifier-free guidance."""


@hookspec
def audio_core_register_objectives(registry):
    """Register diffusion/flow objectives: noising, training target and loss weighting,
    and the ``alpha(t)``/``sigma(t)`` path the samplers integrate."""


@hookspec
def audio_core_register_discriminators(registry):
    """Register discriminators returning logits and feature maps."""


@hookspec
def audio_core_register_losses(registry):
    """Register losses: modules with a name and weight returning a scalar and logged parts."""


@hookspec
def audio_core_register_samplers(registry):
    """Register diffusion samplers: a (guided) data prediction + noise + an objective's
    time grid -> a sample."""


@hookspec
def audio_core_register_datasets(registry):
    """Register datasets yielding fixed-length crops with masks and metadata."""


@hookspec
def audio_core_register_embeddings(registry):
    """Register audio embeddings for the Fréchet audio distance: objects with ``name``,
    ``layer``, ``sample_rate`` and ``embed(audio (channels, time), sample_rate) -> (frames,
    dim)`` (:mod:`audio_core.metrics.embeddings`)."""


@hookspec
def audio_core_register_tasks(registry):
    """Register tasks: how one training step is computed (autoencoder, GAN codec, ...)."""


@hookspec
def audio_core_register_importers(registry):
    """Register model importers for ``audio-core import``: classes with ``detect(src) ->
    bool`` (does the folder ``src`` hold a model this importer converts?) and
    ``convert(src, out, registry) -> Path`` (write an audio-core export to ``out``), see
    :mod:`audio_core.engine.imports`."""


@hookspec
def audio_core_register_exporters(registry):
    """Register model exporters for ``audio-core export --format FORMAT``: classes with a
    ``format`` attribute (e.g. ``"transformers"``), ``accepts(model) -> bool`` and
    ``export(model, out) -> Path``, see :mod:`audio_core.engine.imports`."""


@hookspec
def audio_core_register_commands(registry):
    """Register ``audio-core`` sub-commands: classes with ``description``,
    ``add_arguments(parser)`` and ``run(args) -> int``
    (:class:`audio_core.cli.commands.Command`). ``registry.register("hello", ...)`` makes
    ``audio-core hello`` (and ``audio-core PLUGIN.hello``)."""


@hookspec
def audio_core_register_presets(registry):
    """Register config presets: a name and the path of a YAML file shipped by the plugin."""
