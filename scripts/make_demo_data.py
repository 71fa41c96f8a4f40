#!/usr/bin/env python3
"""Make the demo corpus (``data/demo``) and the held-out speech set, from free sources.

Usage::

    python scripts/make_demo_data.py data/demo              # the committed demo corpus
    python scripts/make_demo_data.py /tmp/heldout --heldout # speech the demo never sees

Sources (Debian packages; their licences are copied to ``OUT/LICENSES/``):

- speech: ``espeak-ng`` (formant synthesis, many voices and variants) and Festival
  (``festival`` with the ``festvox-kallpc16k`` diphone and ``festvox-us-slt-hts`` HMM
  voices), reading the sentences below (written for this project, free to use);
- music: MIDI phrases generated here (random melodies, chords, drums) rendered by
  ``fluidsynth`` with the FluidR3 General MIDI soundfont (``fluid-soundfont-gm``, MIT);
- effects: ``sox`` synthesis (noise sweeps, plucks, chirps, clicks), made from scratch.

Layout: ``OUT/{train,val}/{speech,music,effects}/NAME.flac`` (16 kHz mono, 16-bit FLAC),
plus ``OUT/LICENSES/`` and ``OUT/manifest.json`` (every file with its source and text).
With ``--heldout``: ``OUT/speech/NAME.flac`` only, from voices and sentences that appear
neither in the demo corpus, nor in ``tests/data``, nor in the dev corpus
(``shared/tools/make-dev-corpus``: espeak-ng en-gb, en-us+m2, en-gb-x-gbclan, en-us+f1).

The output is deterministic for a given set of tool versions (fixed seeds and choices).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

RATE = 16000

TRAIN_SENTENCES = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Bright yellow kites danced above the crowded summer beach.",
    "She ordered a bowl of tomato soup and a slice of fresh bread.",
    "Every morning the baker opens his shop at half past six.",
    "Our team finished the project two days ahead of schedule.",
    "Thick fog rolled in from the harbour just after midnight.",
    "Could you please turn down the radio while I am on the phone?",
    "The museum displays fossils that are millions of years old.",
    "A flock of geese flew south in a long uneven line.",
    "He fixed the broken chair with glue, nails and a little patience.",
    "Rain drummed on the tin roof of the old garden shed.",
    "The children built a sandcastle with towers and a deep moat.",
    "Mathematics is the language in which the universe is written.",
    "Fresh snow covered the mountain pass during the night.",
    "Turn left at the bakery, then walk straight for five minutes.",
    "The orchestra tuned their instruments before the concert began.",
    "My grandmother keeps her recipes in a worn leather notebook.",
    "Lightning flashed, and thunder shook the windows of the house.",
    "Scientists measured the speed of sound in warm and cold air.",
    "The cat curled up on the windowsill to watch the birds.",
    "Please bring a pencil, an eraser and a ruler to the exam.",
    "We watched the sunset from the top of the lighthouse.",
    "The farmer sold apples, pears and plums at the Sunday market.",
    "Quiet voices echoed through the long stone corridor.",
    "A small boat drifted slowly toward the rocky shore.",
    "Nine hundred people attended the annual science fair.",
    "The engine coughed twice before it finally started.",
    "Would you like your coffee with milk or without sugar?",
    "Her violin sounded warm and clear in the empty hall.",
    "The bridge was closed for repairs until the end of May.",
    "Strong winds knocked over several trees along the avenue.",
    "He whispered the answer so that nobody else could hear.",
]

HELDOUT_SENTENCES = [
    "Zebras graze peacefully while the lions sleep under an acacia tree.",
    "The pharmacist checked the prescription twice before handing it over.",
    "Jumping over puddles, the twins raced each other to the school gate.",
    "An old map showed a hidden path behind the waterfall.",
    "Vivid murals brightened the walls of the underground station.",
    "Fourteen volunteers cleaned the park on a chilly Saturday morning.",
    "The chef sprinkled chopped herbs over the roasted vegetables.",
    "Our neighbours adopted a shy grey puppy from the shelter.",
]

# (engine, voice, variant): espeak-ng voices with variants, Festival voices
TRAIN_VOICES = [
    ("espeak", "en-us", ""), ("espeak", "en-gb-x-rp", ""), ("espeak", "en-029", ""),
    ("espeak", "en-us", "+f2"), ("espeak", "en-gb-x-rp", "+f4"), ("espeak", "en-us", "+m3"),
    ("espeak", "en-gb-x-gbcwmd", "+m5"), ("espeak", "en-us", "+f5"),
    ("festival", "voice_kal_diphone", ""), ("festival", "voice_cmu_us_slt_arctic_hts", ""),
]
HELDOUT_VOICES = [
    ("espeak", "en-gb-scotland", "+f3"), ("espeak", "en-us-nyc", "+m4"),
    ("espeak", "en-gb-scotland", "+m1"), ("espeak", "en-us-nyc", "+f2"),
    ("festival", "voice_ked_diphone", ""),
]
GM_PROGRAMS = [0, 4, 11, 19, 24, 33, 40, 48, 56, 60, 68, 73, 80, 88, 105, "drums"]


def run(cmd: list[str], **kw) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


def need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise SystemExit(f"make_demo_data: missing {', '.join(missing)}; install with: "
                         "apt-get install espeak-ng festival festvox-kallpc16k "
                         "festvox-us-slt-hts festvox-kdlpc16k fluidsynth fluid-soundfont-gm sox")


def to_flac(src: Path, dst: Path, *effects: str) -> None:
    """``src`` -> 16 kHz mono 16-bit FLAC, peak-normalised to -1 dBFS, silence trimmed."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    run(["sox", str(src), "-r", str(RATE), "-c", "1", "-b", "16", str(dst), *effects,
         "silence", "1", "0.02", "0.1%", "reverse", "silence", "1", "0.02", "0.1%", "reverse",
         "norm", "-1"])


def speak(engine: str, voice: str, variant: str, text: str, out: Path, rng: random.Random
          ) -> None:
    if engine == "espeak":
        run(["espeak-ng", "-v", voice + variant, "-s", str(rng.randint(140, 185)), "-p",
             str(rng.randint(30, 70)), "-w", str(out), text])
    else:
        run(["text2wave", "-eval", f"({voice})", "-o", str(out)], input=text.encode())


def speech(out: Path, tmp: Path, voices, sentences, per_voice: int, rng: random.Random,
           split_of, manifest: list) -> None:
    k = 0
    for vi, (engine, voice, variant) in enumerate(voices):
        for j in range(per_voice):
            text = sentences[(vi * per_voice + j) % len(sentences)]
            raw = tmp / f"s{k}.wav"
            speak(engine, voice, variant, text, raw, rng)
            name = f"{engine}_{(voice + variant).replace('+', '_')}_{j}"
            dst = out / split_of(k) / "speech" / f"{name}.flac" if split_of else \
                out / "speech" / f"{name}.flac"
            to_flac(raw, dst)
            manifest.append({"file": str(dst.relative_to(out)), "source": engine,
                             "voice": voice + variant, "text": text})
            k += 1


def write_midi(path: Path, program, rng: random.Random, seconds: float = 6.0) -> None:
    """A one-track type-0 MIDI file: a random melody with chords (or a drum groove)."""
    drums = program == "drums"
    channel = 9 if drums else 0
    bpm = rng.choice([80, 96, 110, 124, 140])
    tempo = 60_000_000 // bpm
    events = [(0, bytes([0xFF, 0x51, 0x03]) + tempo.to_bytes(3, "big"))]
    if not drums:
        events.append((0, bytes([0xC0 | channel, program])))
    root = rng.choice([48, 52, 55, 57, 60, 64])
    scale = [0, 2, 4, 5, 7, 9, 11, 12, 14]
    steps = int(seconds * bpm / 60 * 2)
    for step in range(steps):
        if drums:
            notes = [36, 42] if step % 4 == 0 else [38, 42] if step % 4 == 2 else [42]
        else:
            degree = rng.choice(scale)
            notes = [root + degree]
            if rng.random() < 0.35:
                notes += [root + degree + 4, root + degree + 7]
        velocity = rng.randint(55, 115)
        length = 240 * rng.choice([1, 1, 2]) if not drums else 240
        for n in notes:
            events.append((0, bytes([0x90 | channel, n, velocity])))
        for i, n in enumerate(notes):
            events.append((length if i == 0 else 0, bytes([0x80 | channel, n, 0])))
    events.append((0, bytes([0xFF, 0x2F, 0x00])))

    def varlen(value: int) -> bytes:
        out = [value & 0x7F]
        while value > 0x7F:
            value >>= 7
            out.append(0x80 | (value & 0x7F))
        return bytes(reversed(out))

    track = b"".join(varlen(delta) + data for delta, data in events)
    path.write_bytes(b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480)
                     + b"MTrk" + struct.pack(">I", len(track)) + track)


def music(out: Path, tmp: Path, rng: random.Random, manifest: list) -> None:
    sf2 = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
    if not sf2.is_file():
        raise SystemExit(f"make_demo_data: {sf2} missing; apt-get install fluid-soundfont-gm")
    for k, program in enumerate(GM_PROGRAMS):
        mid, raw = tmp / f"m{k}.mid", tmp / f"m{k}.wav"
        write_midi(mid, program, rng)
        run(["fluidsynth", "-ni", "-g", "0.6", "-r", "44100", "-F", str(raw), str(sf2),
             str(mid)])
        split = "val" if k % 8 == 7 else "train"
        dst = out / split / "music" / f"gm_{program}_{k}.flac"
        to_flac(raw, dst, "trim", "0", "5")
        manifest.append({"file": str(dst.relative_to(out)), "source": "fluidsynth FluidR3_GM",
                         "program": program})


EFFECTS = {
    "whoosh": ["synth", "1.5", "pinknoise", "sinc", "-n", "64", "300-3000", "fade", "q",
               "0.6", "1.5", "0.8"],
    "pluck_a": ["synth", "1.2", "pluck", "A3", "fade", "0", "1.2", "0.9"],
    "pluck_e": ["synth", "1.2", "pluck", "E4", "fade", "0", "1.2", "0.9"],
    "chirp": ["synth", "1.0", "sine", "200-4000", "fade", "h", "0.05", "1.0", "0.3"],
    "rain": ["synth", "2.0", "brownnoise", "synth", "2.0", "whitenoise", "amod", "8",
             "highpass", "500", "gain", "-6"],
    "buzz": ["synth", "1.0", "square", "110", "lowpass", "1500", "tremolo", "6", "60"],
    "bell": ["synth", "1.5", "sine", "880", "sine", "1320", "remix", "1-2", "fade", "0",
             "1.5", "1.4"],
    "click_train": ["synth", "1.0", "square", "8", "highpass", "2000"],
}


def effects(out: Path, tmp: Path, manifest: list) -> None:
    for k, (name, args) in enumerate(EFFECTS.items()):
        raw = tmp / f"e{k}.wav"
        run(["sox", "-n", "-r", str(RATE), "-c", "1", str(raw), *args])
        split = "val" if k % 4 == 3 else "train"
        dst = out / split / "effects" / f"sox_{name}.flac"
        to_flac(raw, dst)
        manifest.append({"file": str(dst.relative_to(out)), "source": "sox synth",
                         "args": " ".join(args)})


LICENCE_SOURCES = {
    "espeak-ng": "/usr/share/doc/espeak-ng-data/copyright",
    "festival": "/usr/share/doc/festival/copyright",
    "festvox-kallpc16k": "/usr/share/doc/festvox-kallpc16k/copyright",
    "festvox-us-slt-hts": "/usr/share/doc/festvox-us-slt-hts/copyright",
    "festvox-kdlpc16k": "/usr/share/doc/festvox-kdlpc16k/copyright",
    "fluid-soundfont-gm": "/usr/share/doc/fluid-soundfont-gm/copyright",
}


def licences(out: Path) -> None:
    folder = out / "LICENSES"
    folder.mkdir(parents=True, exist_ok=True)
    for name, src in LICENCE_SOURCES.items():
        if Path(src).is_file():
            shutil.copyfile(src, folder / f"{name}.txt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--heldout", action="store_true",
                        help="write the held-out speech set instead of the demo corpus")
    args = parser.parse_args()
    need("espeak-ng", "sox", *(() if args.heldout else ("text2wave", "fluidsynth")))
    rng = random.Random(2024 if not args.heldout else 4048)
    manifest: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.heldout:
            speech(args.out, tmp, HELDOUT_VOICES, HELDOUT_SENTENCES, 2, rng, None, manifest)
        else:
            speech(args.out, tmp, TRAIN_VOICES, TRAIN_SENTENCES, 6, rng,
                   lambda k: "val" if k % 10 == 9 else "train", manifest)
            music(args.out, tmp, rng, manifest)
            effects(args.out, tmp, manifest)
            licences(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"{len(manifest)} clips -> {args.out}")


if __name__ == "__main__":
    main()
