"""Build DeepSpeed's JIT-compiled CPU ops ahead of time: ``python -m audio_core.engine.ops``
(default: the comm op and ``cpu_adam``; pass builder names, e.g. ``FusedAdamBuilder``, for
others).

On CPU, DeepSpeed compiles a C++ op with g++/ninja the first time it needs one: the
shared-memory comm op when a process group starts, ``cpu_adam`` for optimizer offload
(``DeepSpeedCPUAdam``), ``fused_adam`` for an ``optimizer`` block without offload. Each
build takes one to several minutes on a small machine and is cached under
``$TORCH_EXTENSIONS_DIR`` (default ``~/.cache/torch_extensions``). Building them once up
front (tox does, before the tests) keeps compiler runs out of any timed step. A JIT build
serves one environment only; :mod:`audio_core.engine.ops_wheel` compiles them once per
machine into a DeepSpeed wheel that every environment installs (tox does that first), and
this command then only loads them.
"""

from __future__ import annotations

import sys
import time
from typing import Any

#: DeepSpeed op builders (CPU accelerator class names) every process group and the
#: ``zero3_offload`` preset need; ``FusedAdamBuilder`` (an ``optimizer`` block without
#: offload) on request.
CPU_OPS = ("ShareMemCommBuilder", "CPUAdamBuilder")


def prebuild_cpu_ops(names: tuple[str, ...] = CPU_OPS, *,
                     verbose: bool = False) -> dict[str, float]:
    """Build (or load from the cache) each op; returns seconds per op. Does nothing off the
    CPU accelerator (GPU builds are DeepSpeed's own business)."""
    from deepspeed.accelerator import get_accelerator

    accel: Any = get_accelerator()
    if accel.device_name() != "cpu":
        return {}
    took = {}
    for name in names:
        builder = accel.create_op_builder(name)
        if builder is None:  # not an op of this DeepSpeed version
            continue
        started = time.perf_counter()
        builder.load(verbose=verbose)
        took[name] = time.perf_counter() - started
    return took


def main(argv: list[str] | None = None) -> int:
    names = tuple(sys.argv[1:] if argv is None else argv) or CPU_OPS
    for name, seconds in prebuild_cpu_ops(names, verbose=True).items():
        print(f"audio-core: DeepSpeed op {name} ready ({seconds:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
