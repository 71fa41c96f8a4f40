"""``audio-core export --format transformers`` of DAC-layout models (exporter
``soundstream.dac_hf``): ``DacModel.from_pretrained`` loads the folder with no missing or
unexpected tensors, the same config, and gives audio-core's codes and audio (within 1e-4),
also for weights changed after the import (tiny random models, offline)."""

from __future__ import annotations

import json

import pytest
import torch

transformers = pytest.importorskip("transformers")

import audio_core  # noqa: E402
from audio_core.cli import main  # noqa: E402
from audio_core.engine.imports import (  # noqa: E402
    ModelImportError,
    export_model,
    import_model,
)

CONFIGS = {
    "16khz": dict(sampling_rate=16000, downsampling_ratios=[2, 4]),
    "24khz": dict(sampling_rate=24000, downsampling_ratios=[2, 5]),
}


def save_tiny_dac(folder, name):
    """A tiny random ``DacModel`` (unit-gain convs, varied Snake alphas) saved to
    ``folder``; returns it."""
    torch.manual_seed(0)
    config = transformers.DacConfig(encoder_hidden_size=4, decoder_hidden_size=16,
                                    n_codebooks=4, codebook_size=32, codebook_dim=4,
                                    **CONFIGS[name])
    ref = transformers.DacModel(config).eval()
    with torch.no_grad():
        for module in ref.modules():
            if hasattr(module, "alpha"):
                module.alpha.uniform_(0.5, 2.0)
            elif isinstance(module, torch.nn.Conv1d | torch.nn.ConvTranspose1d):
                module.weight.normal_(0, module.weight[0].numel() ** -0.5)
                module.bias.normal_(0, 0.01)
    ref.save_pretrained(folder)
    return ref


def load_back(folder):
    """``DacModel.from_pretrained(folder)``, asserting every tensor was filled."""
    back, info = transformers.DacModel.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    assert not info["mismatched_keys"], info
    return back.eval()


def assert_same_codec(model, back, n_codebooks=4):
    """transformers' ``back`` gives ``model``'s codes (identical) and audio (<= 1e-4)."""
    x = 0.3 * torch.randn(2, 1, 37 * model.hop_length, generator=torch.Generator().manual_seed(1))
    for n in sorted({1, 2, n_codebooks}):
        with torch.no_grad():
            codes_hf = back.encode(x, n_quantizers=n).audio_codes
            audio_hf = back.decode(audio_codes=codes_hf).audio_values
        codes = model.encode_codes(x, n_quantizers=n)
        assert torch.equal(codes, codes_hf)
        assert codes.unique().numel() >= 8  # codes vary: the comparison means something
        diff = (model.decode_codes(codes, audio_hf.shape[-1])[:, 0] - audio_hf).abs().max()
        print(f"n={n}: max abs diff {diff.item():.2e}, peak {audio_hf.abs().max():.2e}")
        assert audio_hf.abs().max() > 1e-3  # real audio, not silence
        assert diff <= 1e-4


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_cli_round_trip(tmp_path, name):
    """transformers -> audio-core import -> export --format transformers -> transformers:
    the same config.json settings and the audio-core model's codes and audio."""
    save_tiny_dac(tmp_path / "hf", name)
    assert main(["import", str(tmp_path / "hf"), str(tmp_path / "ac")]) == 0
    assert main(["export", str(tmp_path / "ac"), str(tmp_path / "back"),
                 "--format", "transformers"]) == 0
    assert sorted(p.name for p in (tmp_path / "back").iterdir()) == ["config.json",
                                                                      "model.safetensors"]
    written = json.loads((tmp_path / "back" / "config.json").read_text())
    assert written["model_type"] == "dac" and written["architectures"] == ["DacModel"]
    back = load_back(tmp_path / "back")
    original = transformers.DacConfig.from_pretrained(tmp_path / "hf").to_dict()
    exported = back.config.to_dict()
    assert {k: v for k, v in exported.items() if original.get(k) != v} == \
        {"_name_or_path": str(tmp_path / "back")}
    assert_same_codec(audio_core.load(tmp_path / "ac"), back)


def test_changed_weights_round_trip(tmp_path):
    """Weights changed after the import (every tensor, codebooks included) are what
    transformers loads: its codes and audio follow the changed model, not the source."""
    ref = save_tiny_dac(tmp_path / "hf", "16khz")
    assert main(["import", str(tmp_path / "hf"), str(tmp_path / "ac")]) == 0
    model = audio_core.load(tmp_path / "ac")
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1 + 0.2 * torch.randn(p.shape, generator=gen))
    export_model(model, tmp_path / "back", "transformers")
    back = load_back(tmp_path / "back")
    again = audio_core.load(import_model(tmp_path / "back", tmp_path / "again"))
    ours, theirs = model.state_dict(), again.state_dict()
    assert ours.keys() == theirs.keys()  # import of the export: the changed model itself
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    changed = model.state_dict()["quantizer.stages.1.codebook.weight"]
    assert torch.equal(back.state_dict()["quantizer.quantizers.1.codebook.weight"], changed)
    assert not torch.equal(ref.state_dict()["quantizer.quantizers.1.codebook.weight"], changed)
    assert_same_codec(model, back)
    x = 0.3 * torch.randn(1, 1, 37 * model.hop_length)
    with torch.no_grad():
        assert not torch.equal(back.encode(x).audio_codes, ref.encode(x).audio_codes)


def test_other_layouts_refused(tmp_path, capsys):
    """A model no transformers exporter takes: a one-line error naming the exporters of
    the format (each one's architecture is in ``audio-core components``)."""
    from audio_core.config import load_config
    from audio_core.models.build import build_model

    model = build_model(load_config("soundstream.tiny"))
    with pytest.raises(ModelImportError) as err:
        export_model(model, tmp_path / "out", "transformers")
    message = str(err.value)
    assert "\n" not in message and "no transformers exporter accepts this" in message
    for name in ("soundstream.encodec_hf", "soundstream.dac_hf", "soundstream.mimi_hf"):
        assert name in message
    assert not (tmp_path / "out").exists()
    assert main(["components", "--kind", "exporter"]) == 0
    listing = capsys.readouterr().out
    assert "DAC-layout model" in listing and "Mimi-layout model" in listing


def test_settings_dac_cannot_express_and_no_transformers_import(tmp_path):
    """Encoder and decoder ratios that differ are an error naming the setting; the export
    itself does not import transformers (checked in a fresh interpreter)."""
    import subprocess
    import sys

    save_tiny_dac(tmp_path / "hf", "16khz")
    assert main(["import", str(tmp_path / "hf"), str(tmp_path / "ac")]) == 0
    code = ("import sys, audio_core; from pathlib import Path; "
            "from audio_core.engine.imports import export_model; "
            f"m = audio_core.load({str(tmp_path / 'ac')!r}); "
            f"export_model(m, Path({str(tmp_path / 'back')!r}), 'transformers'); "
            "print('transformers' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert run.stdout.strip().splitlines()[-1] == "False"
    model = audio_core.load(tmp_path / "ac")
    model.config.model.decoder.params["ratios"] = [4, 2]
    with pytest.raises(ModelImportError, match=r"DAC needs the same ratios in "
                                               r"model.encoder.params and model.decoder"
                                               r".params, got \[2, 4\] and \[4, 2\]"):
        export_model(model, tmp_path / "bad", "transformers")
