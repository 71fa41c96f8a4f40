"""argparse types for numeric flags: finite, in range, with an upper bound, so a bad number
is a one-line usage error (exit status 2) naming the flag before any work.

Every float flag is bounded by :data:`MAX_MAGNITUDE` at the latest: 2**53, the largest
integer a double still counts exactly; no duration, size or count audio-core takes means
anything beyond it (1e30 seconds or bytes is a typo). Flags with a natural range (a port,
a channel count) are bounded by it. ``tests/robustness/test_numeric_flags.py`` walks every
option of every sub-command whose type returns a number.
"""

from __future__ import annotations

import argparse
import math

#: Largest magnitude any numeric flag accepts (2**53: beyond it doubles skip integers).
MAX_MAGNITUDE = 2**53


def bounded(text: str, *, kind: type = float, low: float = 0, high: float = MAX_MAGNITUDE,
            low_open: bool = False) -> float:
    """``text`` as ``kind`` in ``[low, high]`` (``(low, high]`` with ``low_open``), else
    ``argparse.ArgumentTypeError`` saying what is expected."""
    try:
        value = kind(text)
    except ValueError:
        value = None
    what = "an integer" if kind is int else "a finite number"
    side = ">" if low_open else ">="
    if value is None or not math.isfinite(value) or value > high or (
            value <= low if low_open else value < low):
        raise argparse.ArgumentTypeError(f"must be {what} {side} {low:g} and <= "
                                         f"{'2**53' if high == MAX_MAGNITUDE else f'{high:g}'}"
                                         f", got {text!r}")
    return value


def bounded_int(text: str, *, low: int = 0, high: int = MAX_MAGNITUDE) -> int:
    """``text`` as an integer in ``[low, high]`` (see :func:`bounded`)."""
    return int(bounded(text, kind=int, low=low, high=high))


def positive(text: str) -> float:
    """A finite number > 0."""
    return bounded(text, low_open=True)


def non_negative(text: str) -> float:
    """A finite number >= 0."""
    return bounded(text)


def positive_int(text: str) -> int:
    """An integer >= 1."""
    return bounded_int(text, low=1)


def non_negative_int(text: str) -> int:
    """An integer >= 0 (a rank, a worker count where 0 means in-process)."""
    return bounded_int(text)


def count(text: str) -> int:
    """An integer >= 1 (a world size)."""
    return bounded_int(text, low=1)


def sample_rate(text: str) -> int:
    """A sample rate in Hz, 1 to 768000 (the highest rate audio interfaces offer)."""
    return bounded_int(text, low=1, high=768_000)


def channels(text: str) -> int:
    """A channel count, 1 or 2 (what ``data pack`` can mix to)."""
    return bounded_int(text, low=1, high=2)


def seconds(text: str) -> float:
    """A finite number of seconds > 0."""
    return bounded(text, low=0, low_open=True)


def size(text: str) -> int:
    """A byte size (``512MB``, ``1GiB``, ``100000``) from 1 byte to :data:`MAX_MAGNITUDE`."""
    from audio_core.data.pack_plan import parse_size

    try:
        value = parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value > MAX_MAGNITUDE:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_MAGNITUDE} bytes, got {text!r}")
    return value


def seconds_list(text: str) -> tuple[float, ...]:
    """Comma-separated finite seconds > 0, increasing (``2,5,10``)."""
    try:
        values = tuple(seconds(part) for part in text.split(","))
    except argparse.ArgumentTypeError:
        values = ()
    if not values or list(values) != sorted(set(values)):
        raise argparse.ArgumentTypeError(f"expected increasing seconds > 0 separated by "
                                         f"commas, e.g. 2,5,10, got {text!r}")
    return values
