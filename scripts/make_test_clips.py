"""Regenerate the small real audio clips under tests/data/clips/ (committed; < 1 MB total).

Speech comes from espeak-ng and music from fluidsynth with the General MIDI SoundFont
(MIDI files are written by hand here, no extra package needed). Only this script needs the
tools; tests read the committed clips:

    apt-get install -y espeak-ng fluidsynth fluid-soundfont-gm
    python scripts/make_test_clips.py [--out tests/data/clips]

Layout (a class-folder dataset): ``speech/*`` and ``music/*`` at several sample rates,
channel counts and formats.
"""

from __future__ import annotations

import argparse
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from audio_core.audio.io import save_audio
from audio_core.audio.resample import resample

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")

# name, espeak voice, text, output sample rate, file name
SPEECH = [
    ("en-us", "The quick brown fox jumps over the lazy dog.", 22050, "en_22k.wav"),
    ("de", "Guten Morgen, wie geht es dir heute?", 16000, "de_16k.flac"),
    ("fr", "Bonjour, je m'appelle Camille.", 44100, "fr_44k.ogg"),
]
# name, GM program, (midi notes per beat; tuples are chords), tempo bpm, rate, channels, file
MUSIC = [
    ("piano", 0, [60, 64, 67, 72, 67, 64, (60, 64, 67)], 160, 44100, 2, "piano_44k.ogg"),
    ("strings", 48, [(57, 60, 64), (53, 57, 60), (55, 59, 62)], 90, 24000, 2,
     "strings_24k.flac"),
    ("guitar", 25, [52, 55, 59, 64, 59, 55], 140, 16000, 1, "guitar_16k.wav"),
]
SECONDS = 2.5


def _vlq(n: int) -> bytes:
    """MIDI variable-length quantity."""
    out = [n & 0x7F]
    while n := n >> 7:
        out.append(0x80 | (n & 0x7F))
    return bytes(reversed(out))


def write_midi(path: Path, program: int, beats: list, bpm: int, tpb: int = 480) -> None:
    """A format-0 MIDI file playing ``beats`` (a note or a chord per beat) on ``program``."""
    events = bytearray(b"\x00\xff\x51\x03" + (60_000_000 // bpm).to_bytes(3, "big"))
    events += bytes([0x00, 0xC0, program])
    for beat in beats:
        notes = beat if isinstance(beat, tuple) else (beat,)
        for note in notes:
            events += bytes([0x00, 0x90, note, 96])
        for i, note in enumerate(notes):
            events += _vlq(tpb if i == 0 else 0) + bytes([0x80, note, 0])
    events += b"\x00\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, tpb)
    path.write_bytes(header + b"MTrk" + struct.pack(">I", len(events)) + bytes(events))


def finish(audio: np.ndarray, sr: int, out_sr: int, channels: int) -> np.ndarray:
    """(time, ch) float -> (channels, time): trim silence, cut, resample, normalise, fade."""
    x = audio.T.astype(np.float32)
    loud = np.flatnonzero(np.abs(x).max(0) > 1e-3)
    x = x[:, loud[0]: loud[0] + int(SECONDS * sr)] if len(loud) else x[:, : int(SECONDS * sr)]
    x = x.mean(0, keepdims=True) if channels == 1 else np.repeat(x, channels // len(x), 0)
    x = resample(x, sr, out_sr)
    x = x / max(np.abs(x).max(), 1e-6) * 0.9
    fade = min(x.shape[1], int(0.05 * out_sr))
    x[:, -fade:] *= np.linspace(1, 0, fade, dtype=np.float32)
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parent.parent / "tests/data/clips")
    args = parser.parse_args()
    for tool in ("espeak-ng", "fluidsynth"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found; apt-get install -y espeak-ng fluidsynth "
                             "fluid-soundfont-gm")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for voice, text, rate, name in SPEECH:
            wav = tmp / f"{name}.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(wav), text],
                           check=True)
            audio, sr = sf.read(wav, always_2d=True)
            save_audio(args.out / "speech" / name, finish(audio, sr, rate, 1), rate)
        for _, program, beats, bpm, rate, channels, name in MUSIC:
            mid, wav = tmp / f"{name}.mid", tmp / f"{name}.wav"
            write_midi(mid, program, beats, bpm)
            subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.8", "-r", "44100", "-F",
                            str(wav), str(SOUNDFONT), str(mid)], check=True,
                           stdout=subprocess.DEVNULL)
            audio, sr = sf.read(wav, always_2d=True)
            save_audio(args.out / "music" / name, finish(audio, sr, rate, channels), rate)
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"wrote clips to {args.out} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
