"""Streaming of the causal EnCodec-layout networks: an imported 24 kHz EnCodec encodes and
decodes chunk by chunk (any chunk sizes, 1-sample chunks and chunks shorter than a hop
too) to the offline ``encode_codes``/``decode_codes`` and to transformers' codes; the
48 kHz layout (centred convolutions, time group norm) and ``normalize`` are one-line
errors naming why."""

from __future__ import annotations

import math

import pytest
import torch

transformers = pytest.importorskip("transformers")

from audio_plugin_soundstream.encodec import EncodecDecoder, EncodecEncoder  # noqa: E402
from conftest import run_onnx_stream  # noqa: E402
from conftest import saved_encodec as _save  # noqa: E402  (tiny published layouts)

from audio_core.engine.imports import import_model  # noqa: E402
from audio_core.models.loading import load  # noqa: E402
from audio_core.models.streaming import StreamingError  # noqa: E402

LENGTH, HOP = 1013, 8  # upsampling_ratios [4, 2]; 1013 is not whole hops


def chunk_sizes(kind: str, total: int, seed: int = 0) -> list[int]:
    """Chunk lengths summing to ``total``: one chunk, 1-sample chunks, chunks of
    ``HOP - 1`` (shorter than a hop), or random lengths 0 .. 3 hops."""
    if kind == "whole":
        return [total]
    if kind in ("ones", "sub_hop"):
        size = 1 if kind == "ones" else HOP - 1
        return [size] * (total // size) + ([total % size] if total % size else [])
    gen, sizes = torch.Generator().manual_seed(seed), []
    while sum(sizes) < total:
        sizes.append(min(int(torch.randint(0, 3 * HOP + 1, (1,), generator=gen)),
                         total - sum(sizes)))
    return sizes


@pytest.fixture(scope="module")
def imported_dir(tmp_path_factory):
    """A tiny 24 kHz transformers EnCodec and its ``audio-core import`` folder."""
    folder = tmp_path_factory.mktemp("encodec")
    ref, src = _save(folder, "24khz")
    return ref, import_model(src, folder / "imported")


@pytest.fixture(scope="module")
def imported(imported_dir, registry):
    """The imported tiny 24 kHz EnCodec (audio_core.load) and the transformers original."""
    ref, path = imported_dir
    return load(path, registry=registry), ref


def _signal(length: int = LENGTH, batch: int = 2) -> torch.Tensor:
    return 0.3 * torch.randn(batch, 1, length, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("kind", ["whole", "ones", "sub_hop", "random"])
@pytest.mark.parametrize("bandwidth", [12.0, 48.0])
def test_encode_stream_equals_offline_and_transformers(imported, kind, bandwidth):
    model, ref = imported
    x = _signal()
    n = model.n_quantizers_for_bandwidth(bandwidth)
    sizes = chunk_sizes(kind, LENGTH)
    parts = list(model.encode_stream(torch.split(x, sizes, dim=-1), n_quantizers=n))
    assert len(parts) == len(sizes) + 1  # one per chunk, then the flush
    codes = torch.cat(parts, dim=-1)
    assert codes.shape == (2, n, math.ceil(LENGTH / HOP))
    assert codes.unique().numel() >= 8  # codes vary: the comparison means something
    assert torch.equal(codes, model.encode_codes(x, n_quantizers=n))
    with torch.no_grad():
        assert torch.equal(codes, ref.encode(x, bandwidth=bandwidth).audio_codes[0])


@pytest.mark.parametrize("kind", ["whole", "ones", "random"])
def test_decode_stream_equals_offline_and_transformers(imported, kind):
    model, ref = imported
    codes = model.encode_codes(_signal())
    frames = codes.shape[-1]
    parts = list(model.decode_stream(torch.split(codes, chunk_sizes(kind, frames, 2), -1)))
    audio = torch.cat(parts, dim=-1)
    offline = model.decode_codes(codes)
    assert audio.shape == offline.shape == (2, 1, frames * HOP)
    assert (audio - offline).abs().max() <= 1e-5
    with torch.no_grad():
        theirs = ref.decode(codes[None], [None])[0]
    assert (audio - theirs).abs().max() <= 1e-4


@pytest.mark.parametrize("length", [1, 5, 7, 8, 9, 23, 60])
def test_short_streams_are_exact(imported, length):
    """Shorter than the reflect padding of the first layers: the start-up delay holds
    everything back, flush gives it (encoder and decoder)."""
    model, _ = imported
    x = _signal(length, batch=1)
    codes = torch.cat(list(model.encode_stream(torch.split(x, 1, dim=-1))), dim=-1)
    assert torch.equal(codes, model.encode_codes(x))
    parts = list(model.decode_stream(torch.split(codes, 1, dim=-1)))
    audio = torch.cat(parts, dim=-1)
    assert audio.shape[-1] == codes.shape[-1] * HOP
    assert (audio - model.decode_codes(codes)).abs().max() <= 1e-5
    if codes.shape[-1] < 7:  # fewer frames than the decoder's first kernel: all at the end
        assert all(p.shape[-1] == 0 for p in parts[:-1])


def test_startup_delay_is_seven_frames_then_no_lag(imported):
    """The encoder's last and the decoder's first convolution (kernel 7 at the frame rate)
    reflect frames 1..6: nothing for 6 hops, then 7 frames at once, then one per hop."""
    model, _ = imported
    state = model.encoder.stream_state()
    x = _signal(40 * HOP, batch=1)
    out = [model.encoder.stream(c, state).shape[-1] for c in torch.split(x, HOP, dim=-1)]
    assert out == [0] * 6 + [7] + [1] * 33
    state = model.decoder.stream_state()
    latent = torch.randn(1, model.decoder.dim, 12)
    out = [model.decoder.stream(f, state).shape[-1] for f in torch.split(latent, 1, dim=-1)]
    assert out == [0] * 6 + [7 * HOP] + [HOP] * 5
    assert model.decoder.flush(state).shape == (1, 1, 0)  # nothing held back any more


@pytest.mark.parametrize("options", [
    {},
    {"pad_mode": "constant", "conv_shortcut": False},
    {"residual_layers": 2, "lstm_layers": 2, "ratios": (3, 2, 2), "trim_right_ratio": 0.5},
])
@pytest.mark.parametrize("length", [4, 12, 301])
def test_networks_stream_like_offline(options, length):
    """The networks themselves, other layouts than EnCodec's published ones: zero padding,
    identity shortcuts, a transposed conv trimmed on both sides (its left trim comes back
    at flush), deeper stacks; float32, offline's time-major inference path."""
    torch.manual_seed(0)
    trim = options.pop("trim_right_ratio", 1.0)
    small = {"dim": 8, "width": 4, "ratios": (4, 2), "lstm_layers": 1, **options}
    enc, dec = EncodecEncoder(**small).eval(), EncodecDecoder(**small,
                                                              trim_right_ratio=trim).eval()
    x = torch.randn(2, 1, length)
    with torch.no_grad():
        latent, audio = enc(x), dec(enc(x))
    for kind in ("ones", "random"):
        state = enc.stream_state()
        chunks = torch.split(x, chunk_sizes(kind, length, 3), dim=-1)
        streamed = torch.cat([*(enc.stream(c, state) for c in chunks), enc.flush(state)], -1)
        torch.testing.assert_close(streamed, latent, atol=1e-5, rtol=1e-5)
        state = dec.stream_state()
        frames = torch.split(latent, chunk_sizes(kind, latent.shape[-1], 4), dim=-1)
        decoded = torch.cat([*(dec.stream(f, state) for f in frames), dec.flush(state)], -1)
        torch.testing.assert_close(decoded, audio, atol=1e-5, rtol=1e-5)


def test_48khz_layout_does_not_stream(tmp_path, registry):
    _, src = _save(tmp_path, "48khz")
    model = load(import_model(src, tmp_path / "imported"), registry=registry)
    why = (r"time group norm \(norm = 'time_group_norm'\) normalises each layer over the "
           r"whole signal; its convolutions are centred \(causal = false, EnCodec's "
           r"use_causal_conv\) and look ahead; code the whole signal")
    with pytest.raises(StreamingError, match=rf"^EncodecEncoder does not stream: {why}") as err:
        model.encode_stream([torch.zeros(1, 2, 80)])
    assert "\n" not in str(err.value)
    with pytest.raises(StreamingError, match=rf"^EncodecDecoder does not stream: {why}"):
        next(model.decode_stream([torch.zeros(1, 1, 3, dtype=torch.long)]))


def test_normalized_causal_model_does_not_stream(tmp_path, registry):
    _, src = _save(tmp_path, "24khz", normalize=True)
    model = load(import_model(src, tmp_path / "imported"), registry=registry)
    with pytest.raises(StreamingError, match=r"^EncodecCodec does not stream: normalize = "
                                             r"true divides the input by the RMS of the "
                                             r"whole signal"):
        model.encode_stream([torch.zeros(1, 1, 80)])


def test_streaming_onnx_of_imported_encodec(imported, imported_dir, tmp_path):
    """--format onnx-streaming: onnxruntime, first call of 7 hops (the started flag makes
    each layer reflect its own first samples), then 3, 1 and 29 hops: transformers' codes
    and the offline audio."""
    pytest.importorskip("onnxruntime")
    import json

    from audio_core.cli import main

    model, ref = imported
    assert main(["export", str(imported_dir[1]), str(tmp_path / "s"),
                 "--format", "onnx-streaming"]) == 0
    info = json.loads((tmp_path / "s" / "onnx_streaming.json").read_text())
    assert info["first_chunk_min_hops"] == 7 and info["hop_length"] == HOP
    assert info["encoder_states"][0] == {"name": "state_0", "shape": [1, 1, 1],
                                         "batch_axis": 0}  # the started flag
    x = _signal(40 * HOP, 2)
    codes, audio = run_onnx_stream(tmp_path / "s", x, HOP, [(0, 7), (7, 10), (10, 11), (11, 40)])
    with torch.no_grad():
        assert torch.equal(codes, ref.encode(x, bandwidth=48.0).audio_codes[0])
    assert torch.equal(codes, model.encode_codes(x))
    diff = (audio - model.decode_codes(codes)).abs().max().item()
    print(f"encodec streaming onnx: max abs diff {diff:.2e}")
    assert diff <= 1e-4


def test_streaming_onnx_refuses_the_48khz_layout(tmp_path, registry):
    from audio_core.engine.imports import ModelImportError, export_model

    _, src = _save(tmp_path, "48khz")
    model = load(import_model(src, tmp_path / "imported"), registry=registry)
    with pytest.raises(ModelImportError, match="no onnx-streaming exporter accepts this "
                                               "EncodecCodec"):
        export_model(model, tmp_path / "s", "onnx-streaming", registry=registry)
