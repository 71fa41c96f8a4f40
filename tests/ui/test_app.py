"""The Gradio page itself, with the installed Gradio (the ``ui`` extra's range): it builds,
its slider bounds are valid, its numbers are checked like the CLI's flags, and Gradio's
cache of uploads and results lives in the page's own folder and goes when it stops."""

from __future__ import annotations

import math
import re
import socket
import tempfile
from importlib.metadata import requires
from pathlib import Path

import pytest
import torch
from packaging.requirements import Requirement

gr = pytest.importorskip("gradio", reason="the `ui` extra (gradio) is installed by tox")

from audio_core.contracts.models import Generator  # noqa: E402
from audio_core.inference.limits import GenerationLimitError  # noqa: E402
from audio_core.ui.app import build_app, cache_folder, running  # noqa: E402
from audio_core.ui.session import Models, check_page_numbers  # noqa: E402


class Tone(torch.nn.Module):
    """A stand-in generator: a 440 Hz tone ``(num_samples, 1, seconds * 8000)``."""

    sample_rate, channels, condition_keys, conditions = 8000, 1, (), {}

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict] = []

    def generate(self, conditioning, num_samples=1, steps=None, guidance=None, seed=0,
                 seconds=None):
        self.calls.append({"steps": steps, "guidance": guidance, "seed": seed,
                           "seconds": seconds})
        t = torch.arange(int((seconds or 0.25) * 8000)) / 8000
        return (0.3 * torch.sin(2 * math.pi * 440 * t)).expand(num_samples, 1, -1)


Generator.register(Tone)


def _sliders(app) -> list:
    return [b for b in app.blocks.values() if isinstance(b, gr.Slider)]


def _handler(app, name: str):
    return next(f.fn for f in app.fns.values() if getattr(f.fn, "__name__", "") == name)


def test_the_installed_gradio_is_in_the_supported_range():
    spec = next(Requirement(r) for r in requires("audio-core")
                if r.startswith("gradio") and "extra == \"ui\"" in r)
    assert spec.specifier.contains(gr.__version__), (gr.__version__, str(spec))
    assert str(spec.specifier) in ("<7,>=5", ">=5,<7")


def test_the_page_builds_with_valid_slider_bounds(tmp_path, monkeypatch):
    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    models = Models([str(tmp_path / "no-such-export")])
    try:
        app = build_app(models)  # Gradio 6 refused the hidden 1..1 slider at start-up
        (codebooks,) = _sliders(app)
        assert codebooks.minimum < codebooks.maximum and not codebooks.visible
        assert codebooks.minimum <= codebooks.value <= codebooks.maximum
        update = _handler(app, "codebook_slider")(str(tmp_path / "other"))
        assert update["minimum"] < update["maximum"] and update["visible"] is False
    finally:
        models.close()
        monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)


@pytest.mark.parametrize("field, kwargs", [
    ("guidance", {"guidance": float("nan")}), ("guidance", {"guidance": float("inf")}),
    ("guidance", {"guidance": -1.0}), ("guidance", {"guidance": 1e30}),
    ("steps", {"steps": 0}), ("steps", {"steps": -1}), ("steps", {"steps": float("nan")}),
    ("steps", {"steps": 2.5}), ("steps", {"steps": 1e30}),
    ("seconds", {"seconds": 0}), ("seconds", {"seconds": -1.0}),
    ("seconds", {"seconds": float("inf")}), ("seconds", {"seconds": 1e30}),
    ("seed", {"seed": -1}), ("seed", {"seed": float("nan")}), ("seed", {"seed": 1e30}),
])
def test_the_generate_tab_checks_its_numbers_like_the_cli(tmp_path, monkeypatch, field,
                                                          kwargs):
    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    with pytest.raises(GenerationLimitError, match=rf"^{field} must be .*got") as info:
        check_page_numbers(**kwargs)
    assert "\n" not in str(info.value)
    models = Models([])
    tone = models._loaded["tone"] = Tone()
    try:
        run_generate = _handler(build_app(models), "run_generate")
        numbers = {"steps": None, "guidance": None, "seed": 0, "seconds": None, **kwargs}
        with pytest.raises(gr.Error) as page_error:
            run_generate("tone", "", "", numbers["steps"], numbers["guidance"],
                         numbers["seed"], numbers["seconds"])
        message = getattr(page_error.value, "message", str(page_error.value))
        assert re.match(rf"{field} must be ", message) and "\n" not in message
        assert not tone.calls  # refused before the model ran: no clip of zeros
    finally:
        models.close()
        monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)


def test_empty_fields_are_the_models_own_values():
    assert check_page_numbers(None, None, None, None) == (None, None, 0, None)
    assert check_page_numbers(20.0, 3, 7.0, 0.5) == (20, 3.0, 7, 0.5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_uploads_and_results_stay_in_the_pages_folder_and_go_when_it_stops(
        tmp_path, monkeypatch):
    from gradio_client import Client, handle_file

    from audio_core.audio.io import save_audio

    default_tmp = tmp_path / "tmp"  # what tempfile.gettempdir() says: Gradio's default cache
    default_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(default_tmp))
    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    clip = tmp_path / "upload.wav"
    save_audio(clip, 0.1 * torch.randn(1, 4000), 8000)
    models = Models(["tone"])
    models._loaded["tone"] = Tone()
    cache = Path(cache_folder(models))
    port = _free_port()
    with running(models, port=port):
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False)
        # an upload (the reconstruct tab; "tone" is no codec, so it fails after the upload)
        with pytest.raises(Exception, match=r"not a|codec|encode"):
            client.predict("tone", handle_file(str(clip)), 1, api_name="/run_reconstruct")
        # a result (the generate tab)
        result = client.predict("tone", "", "", 10, 1.0, 3, 0.5, api_name="/run_generate")
        served = Path(result["path"] if isinstance(result, dict) else result.path)
        assert served.is_file() and served.is_relative_to(cache)
        kept = sorted(p.name for p in cache.rglob("*") if p.is_file())
        assert any(name.endswith("upload.wav") for name in kept), kept
        assert any(name.endswith(".wav") and "upload" not in name for name in kept), kept
        assert models._loaded["tone"].calls == [
            {"steps": 10, "guidance": 1.0, "seed": 3, "seconds": 0.5}]
    assert not models.workdir.exists()  # the page's folder, Gradio's cache in it, is gone
    assert not (default_tmp / "gradio").exists()  # nothing went to Gradio's own cache
    assert "GRADIO_TEMP_DIR" not in __import__("os").environ
