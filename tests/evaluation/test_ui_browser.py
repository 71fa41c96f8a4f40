"""`audio-core ui` in a real headless browser: Debian's chromium driven by Playwright
(``executable_path=/usr/bin/chromium``: no browser download, no network)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: Flags that keep chromium off the network and working as root in a container.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]


def _require_browser() -> None:
    missing = [] if os.path.exists(CHROMIUM) else ["chromium (apt-get install chromium)"]
    try:
        import gradio  # noqa: F401
        import playwright  # noqa: F401
    except ImportError as err:
        missing.append(f"{err.name} (pip install 'audio-core[ui]' playwright)")
    if missing and os.environ.get("CI"):
        pytest.fail(f"the browser test needs {', '.join(missing)} "
                    "(scripts/install_system_packages.sh installs them)")
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, server: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"audio-core ui exited with {server.returncode}: "
                                 f"{server.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"audio-core ui did not answer on {url} within {seconds} s")


@pytest.mark.slow
@pytest.mark.integration
def test_upload_reconstruct_and_see_audio_and_spectrogram(ui_export, speech_file, tmp_path):
    _require_browser()
    from playwright.sync_api import sync_playwright

    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    tmp = tmp_path / "tmp"  # the server's temporary folders, checked after it stops
    tmp.mkdir()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "TMPDIR": str(tmp)}
    server = subprocess.Popen([sys.executable, "-m", "audio_core", "ui", str(ui_export),
                               "--port", str(port)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=env)
    try:
        _wait_for(url, server, 300)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.set_default_timeout(180_000)  # a loaded 2-core CI machine is slow
            page.goto(url, wait_until="load")
            page.wait_for_selector("#run")
            assert page.title() == "audio-core"
            page.locator("#input input[type=file]").set_input_files(str(speech_file))
            page.wait_for_selector("#input audio, #input [data-testid=waveform-controls]",
                                   state="attached")
            page.click("#run")
            page.wait_for_selector("#spectrogram img", timeout=300_000)
            link = page.locator("#reconstruction a[download]")
            assert link.count() == 1 and link.get_attribute("href").endswith(".wav")
            assert page.locator("#original a[download]").count() == 1
            src = page.locator("#spectrogram img").get_attribute("src")
            image = page.request.get(src if src.startswith("http") else url + src.lstrip("/"))
            assert image.ok and image.body()[:4] == b"\x89PNG"
            table = page.locator("#metrics").inner_text()
            assert "mel_distance" in table and "stoi" in table
            assert "real-time factor" in page.locator("#rtf").inner_text()
            assert page.locator("#download").inner_text().count(".wav") >= 1
            page.screenshot(path=str(tmp_path / "ui.png"), full_page=True)
            browser.close()
        assert (tmp_path / "ui.png").stat().st_size > 10_000
    finally:
        server.terminate()
        server.wait(timeout=30)
    # SIGTERM ends the server like Ctrl-C: its folder of reconstructions is gone
    assert not list(tmp.glob("audio-core-ui-*"))
