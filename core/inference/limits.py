"""Bounds on what one generation request may ask for (``generate``, ``eval`` of a generator,
the UI's generate tab), checked before anything is allocated.

Two kinds: fixed caps on each size flag (:data:`LIMITS`; beyond them a request is almost
surely a typo, and ``--no-limits`` lifts them), and a memory budget derived from this
machine (half its physical memory) that the waveforms and the model's working buffers of
the whole request must fit in, whatever the flags.
"""

from __future__ import annotations

import math
import os

from audio_core.errors import AudioCoreError

#: Largest value of each size flag without ``--no-limits``.
LIMITS = {"--num-samples": 1024, "--steps": 10_000, "--seconds": 3600.0}
#: Working memory per output sample value (float32 waveform plus the buffers a decoder
#: and sampler keep alive at once: latents, noise, guidance copies, activations).
WORK_BYTES_PER_VALUE = 4 * 16


class GenerationLimitError(AudioCoreError, ValueError):
    """A generation request is out of range or larger than this machine can hold."""


def memory_budget() -> int:
    """Bytes one request may use: half the physical memory (8 GiB when unknown)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def check_generation(*, num_samples: int = 1, seconds: float | None = None,
                     steps: int | None = None, guidance: float | None = None,
                     sample_rate: int | None = None, channels: int = 1,
                     unlimited: bool = False) -> None:
    """:class:`GenerationLimitError` naming the flag, its value and the limit when a value
    is not finite, out of range, above :data:`LIMITS` (unless ``unlimited``), or when
    ``num_samples`` clips of ``seconds`` at ``sample_rate`` exceed :func:`memory_budget`."""
    values = {"--num-samples": num_samples, "--steps": steps, "--seconds": seconds}
    for flag, value in values.items():
        if value is None:
            continue
        if not math.isfinite(value) or value <= 0 or (flag != "--seconds"
                                                      and value != int(value)):
            kind = "number" if flag == "--seconds" else "integer"
            raise GenerationLimitError(f"{flag} must be a finite {kind} > 0, got {value}")
        if not unlimited and value > LIMITS[flag]:
            raise GenerationLimitError(f"{flag} {value} is above the limit of {LIMITS[flag]}; "
                                       f"pass --no-limits to lift it")
    if guidance is not None and (not math.isfinite(guidance) or guidance < 0):
        raise GenerationLimitError(f"guidance must be a finite number >= 0, got {guidance}")
    if seconds is not None and sample_rate:
        need = num_samples * seconds * sample_rate * channels * WORK_BYTES_PER_VALUE
        budget = memory_budget()
        if need > budget:
            raise GenerationLimitError(
                f"--num-samples {num_samples} x --seconds {seconds} at {sample_rate} Hz needs "
                f"about {need / 2**30:.1f} GiB, over this machine's budget of "
                f"{budget / 2**30:.1f} GiB (half its memory); ask for fewer or shorter clips")
