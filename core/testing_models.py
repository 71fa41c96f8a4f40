"""The model-contract checks behind :meth:`audio_core.testing.PluginUnderTest.check_model`
(imports torch; kept apart so ``audio_core.testing`` stays light)."""

from __future__ import annotations

import math

import torch

from audio_core.contracts.models import (
    AudioModel,
    Autoencoder,
    Codec,
    Generator,
    Reconstructor,
    capabilities,
    is_codec,
)


def _fail(what: str, message: str) -> None:
    raise AssertionError(f"{what}: {message}")


def _shape(what: str, tensor: torch.Tensor, expected: tuple[int, ...]) -> None:
    if tuple(tensor.shape) != expected:
        _fail(what, f"shape {tuple(tensor.shape)}, expected {expected}")
    if tensor.is_floating_point() and not torch.isfinite(tensor).all():
        _fail(what, "non-finite values")


def build(config: str, overrides: tuple[str, ...] = (), *, loading: bool = False):
    """The model of ``config`` (with ``overrides``), seeded by ``run.seed``, in eval mode."""
    from audio_core.config import load_config
    from audio_core.models.build import build_model
    from audio_core.plugins import get_registry

    registry = get_registry()
    cfg = load_config(config, list(overrides), registry=registry, check_params=True)
    with torch.random.fork_rng():
        torch.manual_seed(cfg.run.seed)
        model = build_model(cfg, registry, loading=loading)
    model.config = cfg
    return model.eval()


@torch.no_grad()
def check_model_contracts(config: str, overrides: tuple[str, ...] = (), *,
                          plugin: str = "", seconds: float = 0.3, batch: int = 2) -> list[str]:
    """See :meth:`audio_core.testing.PluginUnderTest.check_model`."""
    name = f"model of {config}" + (f" (plugin {plugin})" if plugin else "")
    model = build(config, overrides)
    if not isinstance(model, AudioModel):
        _fail(name, f"{type(model).__name__} does not derive from audio_core.models.AudioModel")
    caps = capabilities(model)
    if not caps:
        _fail(name, "implements none of Autoencoder, Codec, Reconstructor, Generator")
    rate, channels = model.sample_rate, model.channels
    if not (isinstance(rate, int) and rate > 0 and isinstance(channels, int) and channels > 0):
        _fail(name, f"sample_rate={rate!r} and channels={channels!r} must be positive ints")
    length = max(1, round(seconds * rate))
    g = torch.Generator().manual_seed(0)
    wave = 0.1 * torch.randn(batch, channels, length, generator=g)

    if isinstance(model, Reconstructor):
        _shape(f"{name}.reconstruct", model.reconstruct(wave), (batch, channels, length))
    if isinstance(model, Autoencoder):
        hop, dim = model.hop_length, model.latent_dim
        frames = math.ceil(length / hop)
        latent = model.encode(wave)
        _shape(f"{name}.encode", latent, (batch, dim, frames))
        _shape(f"{name}.decode", model.decode(latent, length), (batch, channels, length))
        _shape(f"{name}.decode (no length)", model.decode(latent), (batch, channels,
                                                                      frames * hop))
        if abs(model.frame_rate - rate / hop) > 1e-9:
            _fail(name, f"frame_rate {model.frame_rate} != sample_rate / hop_length")
    if isinstance(model, Codec) and is_codec(model):
        spec = model.codec_spec()
        rows, bits, hop = spec.num_codebooks, spec.codebook_bits, spec.hop_length
        if min(rows, bits, hop) < 1 or bits > 62:
            _fail(name, f"codec_spec {spec} needs rows, hop >= 1 and 1 <= bits <= 62")
        frames = math.ceil(length / hop)
        codes = model.encode_codes(wave)
        _shape(f"{name}.encode_codes", codes, (batch, rows, frames))
        if codes.dtype != torch.int64 or int(codes.min()) < 0 or int(codes.max()) >= 2**bits:
            _fail(name, f"codes must be int64 in [0, 2**{bits}), got {codes.dtype} "
                        f"[{int(codes.min())}, {int(codes.max())}]")
        _shape(f"{name}.decode_codes", model.decode_codes(codes, length),
               (batch, channels, length))
        if spec.scalable and rows > 1:
            fewer = model.encode_codes(wave, n_quantizers=1)
            _shape(f"{name}.encode_codes(n_quantizers=1)", fewer, (batch, 1, frames))
            _shape(f"{name}.decode_codes (1 row)", model.decode_codes(fewer, length),
                   (batch, channels, length))
    if isinstance(model, Generator):
        out = model.generate(None, num_samples=batch, steps=2, seed=0, seconds=seconds)
        _shape(f"{name}.generate", out, (batch, channels, length))
        again = model.generate(None, num_samples=batch, steps=2, seed=0, seconds=seconds)
        if not torch.equal(out, again):
            _fail(name, "generate with the same seed gave different audio")
        other = model.generate(None, num_samples=batch, steps=2, seed=1, seconds=seconds)
        if torch.equal(out, other):
            _fail(name, "generate with different seeds gave the same audio")

    fresh = build(config, overrides, loading=True)
    fresh.load_state_dict(model.state_dict(), strict=True)
    for key, value in fresh.state_dict().items():
        if not torch.equal(value, model.state_dict()[key]):
            _fail(name, f"state entry {key} differs after a load_state_dict round trip")
    if isinstance(model, Reconstructor) and not torch.equal(fresh.reconstruct(wave),
                                                            model.reconstruct(wave)):
        _fail(name, "a fresh build loaded with the same weights reconstructs differently")
    return caps
