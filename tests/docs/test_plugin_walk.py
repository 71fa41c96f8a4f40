"""docs/plugin-authors.md section 11 builds a whole family without touching core.

The blocks marked ``file audio-plugin-flow/...`` (a denoiser, a preset, the hooks) are
written to a temporary folder as the package ``audio_plugin_flow``, loaded through an entry
point like an installed plugin, trained for two steps with its preset on captioned clips
(text + timing conditioning), exported, and sampled with ``generate --cond``.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from doc_blocks import read_blocks

from audio_core.cli import main
from audio_core.plugins import PluginManager
from audio_core.plugins import manager as manager_module

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "plugin-authors.md"
PACKAGE = "audio-plugin-flow/"
RATE = 8000


def write_plugin(root: Path) -> list[str]:
    """The walk's files under ``root``; returns their paths relative to the package."""
    written = []
    for block in read_blocks(GUIDE, ROOT):
        if block.file and block.file.startswith(PACKAGE):
            target = root / block.file.removeprefix(PACKAGE)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text() + "\n", encoding="utf-8")
            written.append(block.file.removeprefix(PACKAGE))
    (root / "audio_plugin_flow" / "__init__.py").write_text("", encoding="utf-8")
    return written


def write_captions(folder: Path) -> Path:
    """Four 0.5 s clips (tones and noise) and a caption CSV naming them."""
    rng = np.random.default_rng(0)
    t = np.arange(RATE // 2) / RATE
    rows = ["path,text"]
    for i, (kind, freq) in enumerate([("tone", 220.0), ("tone", 440.0), ("noise", 0.0),
                                      ("tone", 330.0)]):
        clip = (0.3 * np.sin(2 * np.pi * freq * t) if kind == "tone"
                else 0.1 * rng.standard_normal(t.size))
        sf.write(folder / f"clip{i}.wav", clip.astype(np.float32), RATE)
        rows.append(f"clip{i}.wav,a {kind} at {freq:.0f} hertz")
    captions = folder / "captions.csv"
    captions.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return captions


@pytest.fixture
def flow_plugin(tmp_path, monkeypatch):
    """The walk's plugin, loaded through an entry point into the process-wide manager."""
    src = tmp_path / "src"
    files = write_plugin(src)
    monkeypatch.syspath_prepend(str(src))
    entry = md.EntryPoint("flow", "audio_plugin_flow.hooks", "audio_core")
    manager = PluginManager(entry_points=[entry], environ={}).load()
    monkeypatch.setattr(manager_module, "_manager", manager)
    yield manager, files
    for name in [m for m in sys.modules if m.startswith("audio_plugin_flow")]:
        del sys.modules[name]


def test_the_walk_writes_one_component_one_preset_and_hooks_only(flow_plugin):
    manager, files = flow_plugin
    assert sorted(files) == ["audio_plugin_flow/denoiser.py", "audio_plugin_flow/hooks.py",
                             "audio_plugin_flow/presets/tiny.yaml"]
    info = manager.plugins["flow"]
    assert info.status == "loaded", info.reason
    assert info.components == ("flow.patch_transformer", "flow.tiny")


@pytest.mark.integration
def test_the_walk_trains_exports_and_generates_with_text_and_timing(
        flow_plugin, tmp_path, deepspeed_ops, capsys):
    from audio_core import distributed
    from audio_core.config import load_config
    from audio_core.engine.trainer import Trainer

    manager, _ = flow_plugin
    captions = write_captions(tmp_path)
    overrides = [f"data.train.params.captions={captions}", "data.batch_size=2",
                 "train.max_steps=2", "train.log_every=1", "train.checkpoint_every=2",
                 "train.trackers=[jsonl]", f"run.output_dir={tmp_path}"]
    cfg = load_config("flow.tiny", overrides, registry=manager.registry, check_params=True)
    try:
        Trainer(cfg, registry=manager.registry).fit()
    finally:
        distributed.teardown()
    run = tmp_path / "flow_tiny"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").open(encoding="utf-8")]
    losses = [r["metrics"]["loss/total"] for r in rows if "loss/total" in r["metrics"]]
    assert len(losses) == 2 and np.isfinite(losses).all()

    assert main(["export", str(run), str(tmp_path / "export")]) == 0
    wav = tmp_path / "rain.wav"
    assert main(["generate", str(tmp_path / "export"), "--cond", "text=rain on a tin roof",
                 "--cond", "timing=seconds_start=0,seconds_total=10", "--seconds", "0.256",
                 "-o", str(wav)]) == 0, capsys.readouterr().err
    audio, rate = sf.read(wav)
    assert rate == RATE and audio.shape == (2048,) and np.isfinite(audio).all()
    capsys.readouterr()
    assert main(["generate", str(tmp_path / "export"), "--cond", "mood=calm", "-o",
                 str(tmp_path / "x.wav")]) != 0
    assert "text" in capsys.readouterr().err  # the error lists the model's conditioners
