"""`python -m audio_core` is the `audio-core` command."""

from audio_core.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
