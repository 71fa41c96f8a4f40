"""Component kinds as registered records: a name, the hook that registers components of
the kind, and the contract a built component must satisfy.

Core registers its kinds (:data:`BUILTIN_KINDS`) the way a plugin adds one, through the
``audio_core_register_kinds`` hook::

    @hookimpl
    def audio_core_register_kinds(kinds):
        kinds.register("augmentation", contract="audio_plugin_x.contracts:Augmentation",
                       description="waveform -> waveform, applied to training crops")

    @hookimpl
    def audio_core_register_augmentations(registry):   # the kind's hook, made for it
        registry.register("gain", "audio_plugin_x.augment:RandomGain")

Contracts are ``"module:attribute"`` strings, imported when a component is checked, so
listing kinds never imports torch.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

import attrs

from audio_core.errors import ComponentConflictError, PluginLoadError

HOOK_PREFIX = "audio_core_register_"
_KIND_NAME = re.compile(r"[a-z][a-z0-9_]*")
_LAZY = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


@attrs.frozen
class Kind:
    """One component kind. ``contract`` is ``None`` (no contract: tasks, presets), a class,
    or a ``"module:attribute"`` string naming a ``typing.Protocol`` or ABC."""

    name: str
    hook: str
    contract: str | type | None = attrs.field(default=None, repr=False)
    description: str = ""
    plugin: str = "core"
    distribution: str | None = None

    @property
    def origin(self) -> str:
        return f"plugin '{self.plugin}'" + (f" ({self.distribution})" if self.distribution
                                            else "")

    def resolve_contract(self) -> type | None:
        """The contract class, importing it on first use."""
        if self.contract is None or isinstance(self.contract, type):
            return self.contract
        module, _, attr = self.contract.partition(":")
        try:
            obj: Any = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except Exception as exc:
            raise PluginLoadError(
                f"the contract of kind '{self.name}' from {self.origin} could not be imported "
                f"from '{self.contract}': {type(exc).__name__}: {exc}") from exc
        if not isinstance(obj, type):
            raise PluginLoadError(
                f"the contract of kind '{self.name}' ('{self.contract}') is a "
                f"{type(obj).__name__}, not a class (a typing.Protocol or an ABC)")
        return obj


def default_hook(name: str) -> str:
    """``audio_core_register_<plural of name>``: ``encoders``, ``losses``."""
    return f"{HOOK_PREFIX}{name}{'es' if name.endswith(('s', 'x', 'sh', 'ch')) else 's'}"


def _kind(name: str, contract: str | None, description: str) -> Kind:
    return Kind(name, default_hook(name), contract, description, "core", "audio-core")


_COMPONENTS = "audio_core.contracts.components"
#: Core's kinds, in display order.
BUILTIN_KINDS: tuple[Kind, ...] = (
    _kind("model", "audio_core.contracts.models:AudioModel",
          "whole inference pipelines an export holds"),
    _kind("encoder", f"{_COMPONENTS}:Encoder", "waveform -> latent (batch, dim, frames)"),
    _kind("quantizer", "audio_core.contracts.models:Quantizer",
          "latent -> QuantizedResult (codes, losses, bits)"),
    _kind("decoder", f"{_COMPONENTS}:Decoder", "latent (batch, dim, frames) -> waveform"),
    _kind("vocoder", f"{_COMPONENTS}:Vocoder", "spectrogram (batch, bins, frames) -> waveform"),
    _kind("denoiser", f"{_COMPONENTS}:Denoiser", "net(x, t, conditioning) -> prediction"),
    _kind("conditioner", f"{_COMPONENTS}:Conditioner",
          "batch values (text, labels, timing) -> Conditioning"),
    _kind("objective", f"{_COMPONENTS}:Objective", "diffusion/flow noising path and loss"),
    _kind("discriminator", f"{_COMPONENTS}:Discriminator", "audio -> logits + feature maps"),
    _kind("loss", f"{_COMPONENTS}:Loss", "estimate, reference -> scalar + logged parts"),
    _kind("sampler", f"{_COMPONENTS}:Sampler", "denoiser + noise -> sample"),
    _kind("dataset", f"{_COMPONENTS}:Dataset", "fixed-length crops with masks and metadata"),
    _kind("embedding", f"{_COMPONENTS}:Embedding", "audio -> frames of features, for FAD"),
    _kind("task", None, "how one training step is computed"),
    _kind("importer", None, "converters for `audio-core import`"),
    _kind("exporter", None, "writers for `audio-core export --format`"),
    _kind("command", "audio_core.cli.commands:Command", "`audio-core` sub-commands"),
    _kind("preset", None, "YAML config presets"),
)


def contract_of(kind: str) -> type | None:
    """The contract of core's kind ``kind`` (``None``: none, e.g. tasks and presets, or not
    one of core's kinds; ``Registry.contract`` also knows the kinds plugins add)."""
    for record in BUILTIN_KINDS:
        if record.name == kind:
            return record.resolve_contract()
    return None


class KindTable:
    """Every kind by name, in registration order (core's first)."""

    def __init__(self, kinds: tuple[Kind, ...] = BUILTIN_KINDS) -> None:
        self._kinds: dict[str, Kind] = {k.name: k for k in kinds}

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def __iter__(self):
        return iter(self._kinds.values())

    def __getitem__(self, name: str) -> Kind:
        return self._kinds[name]

    def names(self) -> tuple[str, ...]:
        return tuple(self._kinds)

    def hooks(self) -> dict[str, str]:
        """Kind name -> hook name."""
        return {k.name: k.hook for k in self._kinds.values()}

    def add(self, kind: Kind) -> None:
        """Add ``kind``; a name or hook already taken is an error naming both plugins."""
        for existing in self._kinds.values():
            if existing.name == kind.name or existing.hook == kind.hook:
                what = (f"kind '{kind.name}'" if existing.name == kind.name
                        else f"hook '{kind.hook}'")
                raise ComponentConflictError(
                    f"{what} is registered twice: by {existing.origin} and by {kind.origin}")
        self._kinds[kind.name] = kind

    def remove_plugin(self, plugin: str) -> list[Kind]:
        """Forget the kinds ``plugin`` added; returns them."""
        gone = [k for k in self._kinds.values() if k.plugin == plugin]
        for kind in gone:
            del self._kinds[kind.name]
        return gone


class KindRegistrar:
    """What ``audio_core_register_kinds`` receives: adds kinds on behalf of one plugin."""

    def __init__(self, table: KindTable, plugin: str, distribution: str | None) -> None:
        self._table, self._plugin, self._distribution = table, plugin, distribution
        self.added: list[Kind] = []

    def register(self, name: str, *, contract: str | type | None = None,
                 hook: str | None = None, description: str = "") -> Kind:
        """Add kind ``name`` (lower case, ``[a-z0-9_]``). Components of it are registered by
        the hook ``hook`` (default :func:`default_hook`), which every plugin may implement,
        and are checked against ``contract`` when built."""
        if not isinstance(name, str) or not _KIND_NAME.fullmatch(name):
            raise ValueError(f"plugin '{self._plugin}' tried to register kind {name!r}; kind "
                             "names are lower case letters, digits and '_'")
        hook = hook or default_hook(name)
        if not hook.startswith(HOOK_PREFIX) or not hook.isidentifier():
            raise ValueError(f"kind '{name}' of plugin '{self._plugin}' has hook {hook!r}; "
                             f"hook names start with '{HOOK_PREFIX}'")
        if not (contract is None or isinstance(contract, type)
                or (isinstance(contract, str) and _LAZY.fullmatch(contract))):
            raise ValueError(f"kind '{name}' of plugin '{self._plugin}' has contract "
                             f"{contract!r}; give a class or a 'package.module:Class' string")
        kind = Kind(name, hook, contract, description, self._plugin, self._distribution)
        self._table.add(kind)
        self.added.append(kind)
        return kind
