"""``audio-core ui``: a local web page to listen to models (:mod:`audio_core.ui`)."""

from __future__ import annotations

import argparse
import signal

from audio_core.cli.codec import port


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ui", help="a local web page to listen to models",
        description="Serve a web page (Gradio; `pip install 'audio-core[ui]'`) on HOST:PORT: "
                    "pick a MODEL, upload or record a clip, choose the number of codebooks "
                    "of a scalable codec, play the original and the reconstruction A/B at "
                    "matched loudness, see their spectrograms and difference, the metrics "
                    "and the real-time factor, and download the result; a generate tab for "
                    "generative models. Listens on 127.0.0.1 only unless --host says "
                    "otherwise. Stop it with Ctrl-C.")
    p.add_argument("models", nargs="*", metavar="MODEL",
                   help="export or run folders to offer (more can be typed in the page)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=port, default=7860, help="port (default 7860)")
    p.set_defaults(handler=run_ui)


def _exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def run_ui(args: argparse.Namespace) -> int:
    from audio_core.ui.app import serve

    # SIGTERM (a service manager, `kill`) ends the server like Ctrl-C: the page's working
    # folder of reconstructions is removed on the way out
    signal.signal(signal.SIGTERM, _exit)
    print(f"audio-core ui: http://{args.host}:{args.port}/ (Ctrl-C to stop)", flush=True)
    serve(args.models, host=args.host, port=args.port)
    return 0
