"""Streaming of an imported Mimi: chunk by chunk (one chunk, 1-sample chunks, chunks
shorter than a hop, random lengths; signals that are not whole hops) the codes equal the
offline ``encode_codes`` and transformers' ``encode``, the audio the offline
``decode_codes`` within 1e-5. The tiny model's attention window (5 frames) is shorter than
the signals' SEANet frame counts, so the key/value cache evicts frames. Centred
(non-causal) convolutions are a one-line ``StreamingError``."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from audio_plugin_soundstream.mimi_transformer import MimiTransformer  # noqa: E402
from audio_plugin_soundstream.streaming import StreamingState  # noqa: E402
from test_import_mimi import save_tiny_mimi  # noqa: E402

from audio_core.engine.imports import import_model  # noqa: E402
from audio_core.models.loading import load  # noqa: E402
from audio_core.models.streaming import StreamingError  # noqa: E402

HOP = 1920
LENGTH = 2 * 24000 + 700  # 26 frames (50 SEANet frames), not whole hops


def chunk_sizes(kind: str, total: int, seed: int = 0) -> list[int]:
    """Lengths summing to ``total``: one chunk, 1-sample chunks, chunks of ``HOP // 3``
    (shorter than a hop), or random lengths 0 .. 2 hops."""
    if kind == "whole":
        return [total]
    if kind in ("ones", "sub_hop"):
        size = 1 if kind == "ones" else HOP // 3
        return [size] * (total // size) + ([total % size] if total % size else [])
    gen, sizes = torch.Generator().manual_seed(seed), []
    while sum(sizes) < total:
        sizes.append(min(int(torch.randint(0, 2 * HOP + 1, (1,), generator=gen)),
                         total - sum(sizes)))
    return sizes


def _signal(length: int, batch: int = 2) -> torch.Tensor:
    return 0.3 * torch.randn(batch, 1, length, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def imported(tmp_path_factory, registry):
    """A tiny random transformers Mimi (its last decoder conv scaled so that the audio
    peaks near 1, as a codec's does; the random one peaks near 30) and its import."""
    folder = tmp_path_factory.mktemp("mimi")
    ref = save_tiny_mimi(folder / "hf")
    with torch.no_grad():
        last = [m for m in ref.decoder.modules() if isinstance(m, torch.nn.Conv1d)][-1]
        last.weight.mul_(0.03)
        last.bias.mul_(0.03)
    ref.save_pretrained(folder / "hf")
    return load(import_model(folder / "hf", folder / "out"), registry=registry), ref


@pytest.mark.parametrize("kind", ["whole", "sub_hop", "random"])
@pytest.mark.parametrize("n", [2, 5])
def test_encode_stream_equals_offline_and_transformers(imported, kind, n):
    model, ref = imported
    x = _signal(LENGTH)
    parts = list(model.encode_stream(torch.split(x, chunk_sizes(kind, LENGTH), -1),
                                     n_quantizers=n))
    codes = torch.cat(parts, dim=-1)
    assert codes.shape == (2, n, 26) and codes.dtype == torch.long
    with torch.no_grad():
        expected = ref.encode(x, num_quantizers=n).audio_codes
    assert torch.equal(model.encode_codes(x, n_quantizers=n), expected)
    assert torch.equal(codes, expected)
    assert codes[:, -1].unique().numel() >= 8  # codes vary: the comparison means something


@pytest.mark.parametrize("length", [1, 700, HOP, HOP + 1, 5 * HOP + 400])
def test_one_sample_chunks_and_short_streams(imported, length):
    """1-sample chunks, streams shorter than a hop, whole hops and one sample more; the
    longest (11 SEANet frames) is beyond the attention window."""
    model, _ = imported
    x = _signal(length, batch=1)
    codes = torch.cat(list(model.encode_stream(torch.split(x, 1, dim=-1))), dim=-1)
    assert codes.shape[-1] == -(-length // HOP)
    assert torch.equal(codes, model.encode_codes(x))


@pytest.mark.parametrize("kind", ["whole", "ones", "random"])
def test_decode_stream_equals_offline(imported, kind):
    model, ref = imported
    codes = model.encode_codes(_signal(LENGTH))
    audio = model.decode_codes(codes)
    assert audio.shape == (2, 1, 26 * HOP) and 0.3 < audio.abs().max() < 3
    sizes = {"whole": [26], "ones": [1] * 26, "random": [3, 0, 1, 7, 2, 13]}[kind]
    parts = list(model.decode_stream(torch.split(codes, sizes, dim=-1)))
    assert [p.shape[-1] for p in parts[: len(sizes)]] == [s * HOP for s in sizes]
    streamed = torch.cat(parts, dim=-1)
    diff = (streamed - audio).abs().max().item()
    print(f"{kind}: max abs diff {diff:.2e}")
    assert streamed.shape == audio.shape and diff <= 1e-5
    with torch.no_grad():
        expected = ref.decode(codes).audio_values
    assert (streamed - expected).abs().max() <= 1e-4


@pytest.mark.parametrize("kv_heads", [4, 2])
def test_transformer_stream_equals_offline(kv_heads):
    """Keys and values of the last ``window - 1`` frames and the rotary positions carry
    over: any chunking (0-frame chunks too) gives the offline outputs."""
    torch.manual_seed(0)
    tf = MimiTransformer(16, layers=2, heads=4, kv_heads=kv_heads, ffn_dim=32, window=3,
                         layer_scale=1.0).eval()
    x = torch.randn(2, 17, 16)
    with torch.no_grad():
        offline = tf(x)
        state = StreamingState()
        streamed = torch.cat([tf.stream(c, state) for c in torch.split(x, [1, 0, 4, 2, 10], 1)],
                             dim=1)
    torch.testing.assert_close(streamed, offline, atol=1e-6, rtol=1e-6)
    assert state.get(tf) == 17
    assert state.get(tf.layers[0].attn)[0].shape == (2, kv_heads, 2, 4)  # window - 1 frames


def test_centred_mimi_does_not_stream(tmp_path, registry):
    save_tiny_mimi(tmp_path / "hf", use_causal_conv=False)
    model = load(import_model(tmp_path / "hf", tmp_path / "out"), registry=registry)
    why = (r"its convolutions are centred \(causal = false, Mimi's use_causal_conv\) and "
           r"look ahead; code the whole signal")
    with pytest.raises(StreamingError, match=rf"^MimiEncoder does not stream: {why}") as err:
        next(model.encode_stream([torch.zeros(1, 1, 80)]))
    assert "\n" not in str(err.value)
    with pytest.raises(StreamingError, match=rf"^MimiDecoder does not stream: {why}"):
        next(model.decode_stream([torch.zeros(1, 5, 3, dtype=torch.long)]))


@pytest.mark.parametrize("options", [
    {"stride": 3, "groups": 1, "trim_right_ratio": 0.5},  # odd stride, dense, held back
    {"stride": 1},  # no strided conv / transposed conv
])
def test_networks_stream_like_offline(options):
    """Layouts beyond the published one: the encoder's latent and the decoder's audio
    (with a ``trim_right_ratio`` below 1 the decoder holds samples back until ``flush``)
    equal the offline networks'."""
    from audio_plugin_soundstream.mimi import MimiDecoder, MimiEncoder

    torch.manual_seed(0)
    tf = {"layers": 1, "heads": 2, "ffn_dim": 16, "window": 4, "layer_scale": 1.0}
    common = {"dim": 8, "width": 2, "ratios": (2, 3), "transformer": tf}
    enc_opts = {k: v for k, v in options.items() if k == "stride"}
    enc = MimiEncoder(**common, **enc_opts).eval()
    dec = MimiDecoder(**common, **options).eval()
    x = torch.randn(2, 1, 6 * options["stride"] * 7 + 5)
    with torch.no_grad():
        latent = enc(x)
        state = enc.stream_state()
        chunks = torch.split(x, [1, 4, 0, 7, 30, 3, x.shape[-1] - 45], dim=-1)
        streamed = torch.cat([*(enc.stream(c, state) for c in chunks), enc.flush(state)], -1)
        torch.testing.assert_close(streamed, latent, atol=1e-5, rtol=1e-5)
        audio = dec(latent)
        state = dec.stream_state()
        frames = torch.split(latent, [1, 0, 2, latent.shape[-1] - 3], dim=-1)
        parts = [dec.stream(f, state) for f in frames]
        if options.get("trim_right_ratio", 1.0) < 1:
            assert parts[0].shape[-1] < 6 * options["stride"]  # the left trim waits
        decoded = torch.cat([*parts, dec.flush(state)], dim=-1)
        torch.testing.assert_close(decoded, audio, atol=1e-5, rtol=1e-5)
