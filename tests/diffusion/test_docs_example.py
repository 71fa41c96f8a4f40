"""The Python example in docs/diffusion.md runs and produces latents of the asked shape."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "diffusion.md"


def test_the_documented_example_runs():
    (code,) = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    assert namespace["latents"].shape == (2, 8, 32)
    assert namespace["loss"].ndim == 0 and namespace["loss"].requires_grad
