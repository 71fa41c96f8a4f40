"""Shared fixtures: the plugin loaded the way audio-core loads it (installed or not)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from audio_core.testing import PluginUnderTest  # noqa: E402

PLUGIN = PluginUnderTest("soundstream", "audio-plugin-soundstream",
                         "audio_plugin_soundstream.hooks")


def tiny_encodec(folder: Path) -> Path:
    """A tiny random transformers ``EncodecModel`` (24 kHz layout, usable codebooks) saved
    with ``save_pretrained`` to ``folder``; returns ``folder``."""
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.EncodecConfig(hidden_size=8, num_filters=4, upsampling_ratios=[4, 2],
                                        codebook_size=16, num_lstm_layers=1,
                                        target_bandwidths=[12.0, 24.0])
    ref = transformers.EncodecModel(config)
    with torch.no_grad():
        for layer in ref.quantizer.layers:
            layer.codebook.embed.normal_(0, 0.1)
            layer.codebook.embed_avg.copy_(layer.codebook.embed)
            layer.codebook.cluster_size.fill_(4.0)
    ref.save_pretrained(folder)
    return folder


#: tiny versions of the published configs (24 kHz mono causal; 48 kHz stereo non-causal,
#: time group norm, normalised, 10 ms chunks with 1% overlap)
ENCODEC_CONFIGS = {
    "24khz": dict(sampling_rate=24000, audio_channels=1, hidden_size=16, num_filters=4,
                  upsampling_ratios=[4, 2], codebook_size=16, num_lstm_layers=1,
                  target_bandwidths=[12.0, 24.0, 48.0]),
    "48khz": dict(sampling_rate=48000, audio_channels=2, hidden_size=16, num_filters=4,
                  upsampling_ratios=[4, 2], codebook_size=16, num_lstm_layers=1,
                  target_bandwidths=[24.0, 48.0, 96.0], normalize=True, chunk_length_s=0.01,
                  overlap=0.01, use_causal_conv=False, norm_type="time_group_norm"),
}


def saved_encodec(tmp_path: Path, name: str, **extra):
    """A tiny transformers ``EncodecModel`` of layout ``name`` (:data:`ENCODEC_CONFIGS`,
    ``extra`` overriding fields) with perturbed weights and used codebooks, saved to
    ``tmp_path / f"hf_{name}"``; returns ``(model in eval mode, folder)``."""
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.EncodecConfig(**{**ENCODEC_CONFIGS[name], **extra})
    ref = transformers.EncodecModel(config)
    with torch.no_grad():
        for p in ref.parameters():  # group-norm affine params are 1/0 otherwise
            p.add_(0.1 * torch.randn_like(p))
        # codebooks (transformers initialises them to zeros): latent frames of noise for
        # the first, random vectors at the residual's scale for the others
        rows = ref.encoder(0.3 * torch.randn(4, ref.config.audio_channels, 800))
        rows = rows.transpose(1, 2).reshape(-1, rows.shape[1])
        for i, layer in enumerate(ref.quantizer.layers):
            size = layer.codebook.embed.shape[0]
            layer.codebook.embed.copy_(rows[torch.randperm(len(rows))[:size]] if i == 0 else
                                       torch.randn(size, rows.shape[1]) * rows.std(0) * 0.5 ** i)
            layer.codebook.embed_avg.copy_(layer.codebook.embed)
            layer.codebook.cluster_size.fill_(1.0)
    src = tmp_path / f"hf_{name}"
    ref.save_pretrained(src)
    return ref.eval(), src


def run_onnx_stream(folder: Path, x, hop: int, bounds) -> tuple:
    """Run the ``--format onnx-streaming`` graphs in ``folder`` (onnxruntime) on ``x``
    ``(batch, channels, time)`` in chunks of whole hops (``bounds``: ``(first, last)`` hop
    pairs), states starting at zeros; returns the concatenated (codes, audio) tensors."""
    import json

    import onnxruntime as ort
    import torch

    info = json.loads((folder / "onnx_streaming.json").read_text())
    sessions = {k: ort.InferenceSession(str(folder / f"{k}_step.onnx"),
                                        providers=["CPUExecutionProvider"])
                for k in ("encoder", "decoder")}

    def zeros(states):
        shapes = [list(s["shape"]) for s in states]
        for shape, s in zip(shapes, states, strict=True):
            shape[s["batch_axis"]] = x.shape[0]
        return [torch.zeros(shape).numpy() for shape in shapes]

    states = {"encoder": zeros(info["encoder_states"]), "decoder": zeros(info["decoder_states"])}
    codes, audio = [], []
    for lo, hi in bounds:
        feeds = {f"state_{i}": s for i, s in enumerate(states["encoder"])}
        c, *states["encoder"] = sessions["encoder"].run(
            None, {"chunk": x[..., lo * hop: hi * hop].numpy(), **feeds})
        feeds = {f"state_{i}": s for i, s in enumerate(states["decoder"])}
        a, *states["decoder"] = sessions["decoder"].run(None, {"codes": c, **feeds})
        codes.append(torch.from_numpy(c))
        audio.append(torch.from_numpy(a))
    return torch.cat(codes, dim=-1), torch.cat(audio, dim=-1)


@pytest.fixture(scope="session")
def registry():
    """A registry with audio-core's built-ins and this plugin only."""
    pm = PLUGIN.load()
    info = pm.plugins["soundstream"]
    assert info.status == "loaded", info.reason
    return pm.registry


def pytest_configure(config):
    """DeepSpeed's JIT-built ops are cached per Python environment (tox sets its own
    folder): builds record absolute source paths, so environments sharing one cache
    rebuild each other's ops."""
    import os
    import sys
    from pathlib import Path

    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path(sys.prefix) / "torch_extensions"))
