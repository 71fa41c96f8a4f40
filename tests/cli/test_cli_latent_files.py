"""``audio-core encode --latent`` / ``decode --latent``: latent files with the model
fingerprint, decoded back by the same model only."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audio_core.cli import main
from audio_core.config import load_config
from audio_core.engine.export import save_export
from audio_core.latents.files import LatentFileError, read_latent_file, write_latent_file
from audio_core.models.build import build_model
from audio_core.models.fingerprint import model_fingerprint
from audio_core.models.loading import load
from audio_core.plugins import get_registry

RATE, HOP = 8000, 4


def export(root: Path, name: str, seed: int = 0) -> Path:
    conv = {"dim": 3, "width": 2, "ratios": [2, 2]}
    cfg = load_config({"run": {"name": name, "seed": seed},
                       "data": {"sample_rate": RATE, "channels": 1},
                       "model": {"encoder": {"name": "core.conv", "params": conv},
                                 "decoder": {"name": "core.conv", "params": conv},
                                 "losses": [{"name": "core.l1"}]},
                       "task": {"name": "core.autoencoder"}})
    torch.manual_seed(seed)
    module = build_model(cfg, get_registry())
    out = root / name
    out.mkdir()
    save_export(module, cfg, out)
    return out


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("latent_files")
    t = np.arange(int(0.7 * RATE) + 3) / RATE
    sf.write(root / "in.wav", (0.5 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), RATE,
             subtype="FLOAT")
    return {"root": root, "model": export(root, "model"), "other": export(root, "other", 1),
            "length": len(t)}


def run(*args) -> int:
    return main([str(a) for a in args])


def test_encode_writes_the_latent_with_its_header(workspace, capsys):
    root, model = workspace["root"], workspace["model"]
    target = root / "a.safetensors"
    assert run("encode", model, root / "in.wav", target, "--latent") == 0
    summary = json.loads(capsys.readouterr().out)
    latent, header = read_latent_file(target)
    loaded = load(model)
    frames = math.ceil(workspace["length"] / HOP)
    assert latent.shape == (3, frames) and latent.dtype == torch.float32
    assert header["model_fingerprint"] == summary["model_fingerprint"] == \
        model_fingerprint(loaded)
    assert (header["sample_rate"], header["hop_length"], header["latent_dim"],
            header["length"], header["frame_rate"]) == (RATE, HOP, 3, workspace["length"],
                                                         RATE / HOP)
    audio = torch.from_numpy(sf.read(root / "in.wav", dtype="float32")[0])[None, None]
    padded = torch.nn.functional.pad(audio, (0, frames * HOP - audio.shape[-1]))
    with torch.no_grad():
        torch.testing.assert_close(latent, loaded.encode(padded)[0], atol=1e-5, rtol=1e-5)

    out = root / "a.wav"
    assert run("decode", model, target, out, "--latent") == 0
    decoded, rate = sf.read(out, dtype="float32")
    assert rate == RATE and len(decoded) == workspace["length"]
    with torch.no_grad():
        expected = loaded.decode(latent[None], workspace["length"])[0, 0].clamp(-1, 1)
    np.testing.assert_allclose(decoded, expected.numpy(), atol=1e-4)


def test_another_model_cannot_decode_it(workspace, capsys):
    root = workspace["root"]
    target = root / "b.safetensors"
    assert run("encode", workspace["model"], root / "in.wav", target, "--latent") == 0
    capsys.readouterr()
    assert run("decode", workspace["other"], target, root / "b.wav", "--latent") != 0
    err = capsys.readouterr().err
    other = model_fingerprint(load(workspace["other"]))
    assert "was encoded by a model with fingerprint" in err and other in err
    assert not (root / "b.wav").exists()


def test_bitrate_options_do_not_apply_to_latents(workspace, capsys):
    root = workspace["root"]
    assert run("encode", workspace["model"], root / "in.wav", root / "c.safetensors",
               "--latent", "--n-quantizers", "1") != 0
    assert "--latent writes the continuous latent" in capsys.readouterr().err


def test_foreign_and_malformed_files_are_errors(tmp_path):
    from safetensors.torch import save_file

    save_file({"latent": torch.zeros(2, 3)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(LatentFileError, match="not a latent file"):
        read_latent_file(tmp_path / "plain.safetensors")
    with pytest.raises(LatentFileError, match="does not exist"):
        read_latent_file(tmp_path / "missing.safetensors")
    with pytest.raises(LatentFileError, match="header keys"):
        write_latent_file(tmp_path / "x.safetensors", torch.zeros(2, 3), {"sample_rate": 1})
