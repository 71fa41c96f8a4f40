"""ProgressBar: periodic plain lines with rates and ETA off a TTY; a rich bar on one."""

from __future__ import annotations

import io

from audio_core.tracking import ProgressBar
from audio_core.tracking.progress import format_duration


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_are_periodic_with_eta():
    out, clock = io.StringIO(), Clock()
    bar = ProgressBar(1000, initial_step=100, stream=out, log_every_s=10, clock=clock)
    for step in range(101, 201):  # 2 steps/s, each step 0.5 s of audio x 8 = 4 s audio
        clock.now += 0.5
        bar.update(step, loss=1.0 / step, audio_seconds=4.0)
    bar.close()
    lines = out.getvalue().splitlines()
    # first update, then every 10 s (20 steps) of the 50 s run, nothing more
    assert len(lines) == 1 + 50 // 10
    last = lines[-1]
    assert last.startswith("train step 200/1000 (20.0%)")
    assert "loss 0.005" in last and "2.00 steps/s" in last and "8.0 s audio/s" in last
    assert "ETA 0:06:40" in last  # 800 steps at 2 steps/s
    assert "elapsed 0:00:50" in last
    assert bar.eta() == 400.0


def test_last_step_and_close_print_final_line():
    out, clock = io.StringIO(), Clock()
    with ProgressBar(3, stream=out, log_every_s=1000, clock=clock) as bar:
        for step in (1, 2, 3):
            clock.now += 1
            bar.update(step)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("train step 1/3") and lines[-1].startswith("train step 3/3")
    assert "ETA 0:00:00" in lines[-1]
    out2 = io.StringIO()
    with ProgressBar(10, stream=out2, log_every_s=1000, clock=clock) as bar:
        bar.update(1)
        bar.update(2)
    assert [line.split("|")[0].strip() for line in out2.getvalue().splitlines()] == [
        "train step 1/10 (10.0%)", "train step 2/10 (20.0%)"]


def test_disabled_prints_nothing():
    out = io.StringIO()
    with ProgressBar(10, stream=out, disable=True) as bar:
        bar.update(5, loss=1.0)
    assert out.getvalue() == ""


def test_terminal_mode_uses_rich_bar():
    out = io.StringIO()
    with ProgressBar(10, stream=out, force_terminal=True) as bar:
        bar.update(4, loss=0.25)
    text = out.getvalue()
    assert "4/10" in text and "loss 0.25" in text and "\x1b[" in text  # ANSI in-place updates


def test_format_duration():
    assert format_duration(3725) == "1:02:05"
    assert format_duration(2 * 86400 + 61) == "2d 00:01:01"
    assert format_duration(None) == format_duration(float("inf")) == "?"
