"""The Gradio page of ``audio-core ui``: a reconstruct tab and a generate tab.

Layout only; the work is :class:`audio_core.ui.session.Models`. Gradio is imported here,
so ``audio-core --help`` and every other command work without it. Supported: Gradio 5.x and
6.x (the ``ui`` extra's range; ``tests/ui`` builds the page with the installed one).

Gradio keeps uploads and results in its cache folder (``GRADIO_TEMP_DIR``); the page puts
it inside the :class:`Models` working folder, which :func:`serve` removes when it stops.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from audio_core.errors import AudioCoreError, MissingPackageError
from audio_core.ui.session import Models, check_page_numbers, describe

UI_EXTRA = "pip install 'audio-core[ui]'"


def _gradio():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home
    try:
        import gradio
    except ImportError as err:
        raise MissingPackageError(f"audio-core ui needs the 'gradio' package, which is not "
                                  f"installed ({err}); install it with `{UI_EXTRA}`") from None
    return gradio


def _player(rate: int, audio) -> tuple[int, np.ndarray]:
    """``(channels, time)`` float -> Gradio's ``(rate, int16 (time, channels))``."""
    data = (audio.clamp(-1, 1).numpy().T * 32767).astype(np.int16)
    return rate, data[:, 0] if data.shape[1] == 1 else data


def _message(err: Exception) -> str:
    """One line for the page: audio-core's own errors as they are, others with their type."""
    text = " ".join(str(err).split())
    return text if isinstance(err, AudioCoreError) else f"{type(err).__name__}: {text}"


def cache_folder(models: Models) -> str:
    """Gradio's cache of uploads and results for the page of ``models``: inside its
    working folder."""
    return str(models.workdir / "gradio")


def build_app(models: Models) -> Any:
    """The ``gradio.Blocks`` page for ``models``. Points ``GRADIO_TEMP_DIR`` at
    :func:`cache_folder` (Gradio reads it when components are made and when the server
    starts)."""
    os.environ["GRADIO_TEMP_DIR"] = cache_folder(models)
    gr = _gradio()

    def slider_settings(name: str | None) -> dict[str, Any]:
        try:
            info = describe(models.get(name)) if name else {}
        except Exception:  # a bad path typed in: the reconstruct button says why
            info = {}
        if info.get("scalable") and info.get("num_codebooks", 1) > 1:
            n = info["num_codebooks"]
            return {"visible": True, "minimum": 1, "maximum": n, "value": n,
                    "label": f"codebooks ({info['kbps_per_codebook']:g} kbps each)"}
        # hidden: a placeholder range (Gradio 6 refuses minimum == maximum)
        return {"visible": False, "minimum": 1, "maximum": 2, "value": 1}

    def codebook_slider(name: str | None):
        return gr.update(**slider_settings(name))

    def run_reconstruct(name: str, source: str | None, codebooks: float | None):
        if not source:
            raise gr.Error("upload or record a clip first")
        try:
            result = models.reconstruct(name, source, int(codebooks) if codebooks else None)
        except Exception as err:  # shown on the page, not as a traceback
            raise gr.Error(_message(err)) from err
        metrics = result.metrics
        rtf = f"real-time factor {metrics['rtf']:.3f} ({1 / max(metrics['rtf'], 1e-9):.1f}x " \
              f"faster than real time)"
        rows = [[k, round(v, 4) if isinstance(v, float) else str(v)]
                for k, v in metrics.items() if k != "notes"]
        return (_player(result.sample_rate, result.original),
                _player(result.sample_rate, result.reconstruction),
                str(result.spectrogram), rows, rtf, str(result.download))

    def run_generate(name, text, label, steps, guidance, seed, seconds):
        try:  # checked like the CLI's flags: one line, never a clip of NaN/zeros
            steps, guidance, seed, seconds = check_page_numbers(steps, guidance, seed,
                                                                seconds)
            rate, audio = models.generate(name, text, label, steps, guidance, seed, seconds)
        except Exception as err:
            raise gr.Error(_message(err)) from err
        return _player(rate, audio)

    choices = models.paths
    with gr.Blocks(title="audio-core") as app:
        gr.Markdown("# audio-core\nListen to a model: upload or record a clip, reconstruct "
                    "it, compare A/B at matched loudness.")
        model = gr.Dropdown(choices=choices, value=choices[0] if choices else None,
                            allow_custom_value=True, label="model (export or run folder)",
                            elem_id="model")
        with gr.Tab("Reconstruct"):
            with gr.Row():
                source = gr.Audio(sources=["upload", "microphone"], type="filepath",
                                  label="input clip", elem_id="input")
                with gr.Column():
                    codebooks = gr.Slider(step=1, elem_id="codebooks", **{
                        "label": "codebooks", **slider_settings(model.value)})
                    button = gr.Button("Reconstruct", variant="primary", elem_id="run")
            with gr.Row():
                original = gr.Audio(label="A: original (loudness matched)",
                                    elem_id="original", interactive=False)
                reconstruction = gr.Audio(label="B: reconstruction (loudness matched)",
                                          elem_id="reconstruction", interactive=False)
            spectrogram = gr.Image(label="original / reconstruction / difference",
                                   type="filepath", elem_id="spectrogram", interactive=False)
            with gr.Row():
                metrics = gr.Dataframe(headers=["metric", "value"], label="metrics",
                                       elem_id="metrics", interactive=False)
                with gr.Column():
                    rtf = gr.Markdown(elem_id="rtf")
                    download = gr.File(label="download the reconstruction",
                                       elem_id="download", interactive=False)
            button.click(run_reconstruct, [model, source, codebooks],
                         [original, reconstruction, spectrogram, metrics, rtf, download])
        with gr.Tab("Generate"):
            gr.Markdown("For generative models (e.g. `core.latent_diffusion` exports).")
            with gr.Row():
                text = gr.Textbox(label="text (text-conditioned models)")
                label = gr.Textbox(label="class (class-conditioned models)")
            with gr.Row():
                steps = gr.Number(value=None, label="steps (empty: the model's)", precision=0)
                guidance = gr.Number(value=None, label="guidance (empty: the model's)")
                seed = gr.Number(value=0, label="seed", precision=0)
                seconds = gr.Number(value=None, label="seconds (empty: the model's)")
            generate = gr.Button("Generate", variant="primary", elem_id="generate")
            generated = gr.Audio(label="generated", elem_id="generated", interactive=False)
            generate.click(run_generate, [model, text, label, steps, guidance, seed, seconds],
                           generated)
        model.change(codebook_slider, model, codebooks)
    return app


@contextlib.contextmanager
def running(models: Models, host: str = "127.0.0.1", port: int = 7860) -> Iterator[Any]:
    """The page of ``models`` served on ``host:port`` while the block runs; on the way
    out (also Ctrl-C, SIGTERM) the server stops and the working folder with Gradio's cache
    is removed, and ``GRADIO_TEMP_DIR`` is restored."""
    before = os.environ.get("GRADIO_TEMP_DIR")
    app = None
    try:
        app = build_app(models)
        app.queue().launch(server_name=host, server_port=port, share=False, inbrowser=False,
                           show_error=True, prevent_thread_lock=True, quiet=True)
        yield app
    finally:
        if app is not None:
            app.close(verbose=False)
        models.close()
        if before is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = before


def serve(paths: list[str], host: str = "127.0.0.1", port: int = 7860) -> None:
    """Serve the page until interrupted."""
    with running(Models(paths), host, port) as app:
        app.block_thread()
