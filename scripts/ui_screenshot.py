"""Screenshot of the `audio-core ui` page after reconstructing a clip (docs/images/ui.png).

    python scripts/ui_screenshot.py runs/soundstream_demo/export \
        data/heldout/speech/espeak_en-us-nyc_f2_0.flac docs/images/ui.png

Starts ``audio-core ui MODEL`` on a free local port, opens it in Debian's headless
``chromium`` through Playwright (no browser download), uploads CLIP, presses Reconstruct,
waits for the spectrograms and saves a full-page PNG to OUT.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests" / "evaluation"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="an export or run folder")
    parser.add_argument("clip", type=Path, help="an audio file to upload")
    parser.add_argument("out", type=Path, help="the PNG to write")
    args = parser.parse_args()
    sys.path.insert(0, str(TESTS))
    from playwright.sync_api import sync_playwright
    from test_ui_browser import CHROMIUM, FLAGS, _free_port, _wait_for

    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    server = subprocess.Popen([sys.executable, "-m", "audio_core", "ui", args.model,
                               "--port", str(port)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    try:
        _wait_for(url, server, 300)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.set_default_timeout(300_000)
            page.goto(url, wait_until="load")
            page.locator("#input input[type=file]").set_input_files(str(args.clip))
            page.wait_for_selector("#input audio, #input [data-testid=waveform-controls]",
                                   state="attached")
            page.click("#run")
            page.wait_for_selector("#spectrogram img")
            page.wait_for_timeout(1000)  # let the players draw their waveforms
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out), full_page=True)
            browser.close()
        print(f"wrote {args.out}")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
