"""``--device``/``--dtype`` on reconstruct, encode, decode (and generate's parser): bf16
autocast on CPU writes fp32 audio close to the fp32 run; unavailable devices and fp16 on
CPU are one-line errors naming the flag, raised before the model is loaded."""

from __future__ import annotations

import argparse

import pytest
import soundfile as sf
import torch

from audio_core.audio.io import save_audio
from audio_core.cli import build_parser, main
from audio_core.config import load_config
from audio_core.engine.export import save_export
from audio_core.inference.placement import PlacementError, check_dtype, resolve_device
from audio_core.models.build import build_model
from audio_core.plugins import get_registry

from .conftest import RATE


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    conv = {"dim": 4, "width": 2, "ratios": [2, 2]}
    cfg = load_config({"data": {"sample_rate": RATE, "channels": 1}, "model": {
        "encoder": {"name": "core.conv", "params": conv},
        "decoder": {"name": "core.conv", "params": conv},
        "quantizer": {"name": "core.rvq", "params": {"dim": 4, "num_codebooks": 3,
                                                     "codebook_size": 16}},
        "losses": [{"name": "core.l1"}]}, "task": {"name": "core.autoencoder"}})
    torch.manual_seed(0)
    save_export(build_model(cfg, get_registry()).eval(), cfg, out / "model")
    torch.manual_seed(3)
    save_audio(out / "in.wav", 0.2 * torch.rand(1, 3000) - 0.1, RATE)
    return out


def test_every_inference_command_has_the_flags():
    parser = build_parser()
    for command in ("reconstruct", "encode", "decode", "generate"):
        args = parser.parse_args([command, "M", "IN", "OUT", "--device", "cpu", "--dtype",
                                  "bf16"] if command != "generate" else
                                 [command, "M", "-o", "OUT", "--device", "cpu", "--dtype",
                                  "bf16"])
        assert (args.device, args.dtype) == ("cpu", "bf16"), command
    with pytest.raises(SystemExit):
        parser.parse_args(["encode", "M", "IN", "OUT", "--dtype", "fp64"])


def test_resolve_device_and_dtype():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(PlacementError, match=r"--device 'gpu7' is not a device"):
        resolve_device("gpu7")
    if not torch.cuda.is_available():
        with pytest.raises(PlacementError, match=r"--device cuda: CUDA is not available"):
            resolve_device("cuda")
    with pytest.raises(PlacementError, match=r"--dtype fp16 needs a CUDA device"):
        check_dtype("fp16", torch.device("cpu"))
    assert check_dtype("bf16", torch.device("cpu")) is torch.bfloat16


def test_bf16_on_cpu_round_trips_through_the_cli(export, capsys):
    model, wav = str(export / "model"), str(export / "in.wav")
    for dtype in ("fp32", "bf16"):
        assert main(["reconstruct", model, wav, str(export / f"r_{dtype}.wav"), "--no-report",
                     "--dtype", dtype]) == 0
        assert main(["encode", model, wav, str(export / f"{dtype}.tokens"), "--dtype",
                     dtype]) == 0
        assert main(["decode", model, str(export / f"{dtype}.tokens"),
                     str(export / f"d_{dtype}.wav"), "--dtype", dtype, "--device", "auto"]) == 0
    for name in ("r", "d"):
        full, half = (sf.read(export / f"{name}_{d}.wav", dtype="float32")[0]
                      for d in ("fp32", "bf16"))
        assert full.shape == half.shape == (3000,)
        # bf16 rounding (a few codes may flip), not another model
        assert abs(full - half).mean() < 0.1 * abs(full).mean()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error")
def test_unavailable_device_is_refused_before_loading(tmp_path, capsys):
    code = main(["encode", str(tmp_path / "missing"), str(tmp_path / "x.wav"),
                 str(tmp_path / "x.tokens"), "--device", "cuda"])
    assert code != 0
    err = capsys.readouterr().err
    assert "--device cuda: CUDA is not available" in err and "Traceback" not in err


def test_namespace_defaults_keep_cpu_fp32():
    args = build_parser().parse_args(["decode", "M", "IN", "OUT"])
    assert isinstance(args, argparse.Namespace) and (args.device, args.dtype) == ("cpu",
                                                                                  "fp32")
