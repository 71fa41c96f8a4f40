"""``export --format onnx`` checks its graphs at a length other than the traced one: a
graph with a length baked in by tracing is a one-line error naming the graph, not a
tensor-size traceback."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from audio_core.contracts.components import Encoder
from audio_core.engine.onnx_export import OnnxExportError, export_onnx
from audio_core.models.autoencoder import AudioAutoencoder

from .conftest import DIM, HOP, RATE, FrameDecoder, tiny_codec


class BakedLengthEncoder(nn.Module, Encoder):
    """Computes its frame count with a Python ``int``: tracing makes it a constant."""

    dim, hop_length = DIM, HOP

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, DIM, HOP, stride=HOP)

    def forward(self, waveform):
        frames = -(-int(waveform.shape[-1]) // HOP)
        x = F.pad(waveform, (0, frames * HOP - waveform.shape[-1]))
        return self.conv(x)[..., :frames] * torch.ones(frames)


def test_length_baked_into_a_graph_is_named(tmp_path):
    model = AudioAutoencoder(BakedLengthEncoder(), FrameDecoder(), sample_rate=RATE).eval()
    with pytest.raises(OnnxExportError, match=r"encoder.onnx is not length-dynamic: on \d+ "
                                              r"samples it gives shape"):
        export_onnx(model, tmp_path, seconds=0.05)


def test_causal_codec_graphs_match_at_another_length(tmp_path):
    info = export_onnx(tiny_codec(), tmp_path, seconds=0.05)
    assert info["max_abs_diff"]["encoder_codes_differ"] == 0
    assert info["max_abs_diff"]["decoder"] <= 1e-4
