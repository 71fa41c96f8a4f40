"""How long `audio-core plugins` takes, against a bare `python -c pass` baseline.

Usage: python benchmarks/cli_startup.py [--repeat 10] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def timed(cmd: list[str], repeat: int) -> float:
    """Median wall time of ``cmd`` over ``repeat`` runs, in seconds."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    baseline = timed([sys.executable, "-c", "pass"], args.repeat)
    results = {"python -c pass": baseline}
    for argv in (["plugins"], ["plugins", "--json"], ["components"]):
        results["audio-core " + " ".join(argv)] = timed(
            [sys.executable, "-m", "audio_core", *argv], args.repeat)
    torch_import = timed([sys.executable, "-c", "import torch"], args.repeat)
    results["python -c 'import torch' (for scale)"] = torch_import
    print(f"{'command':45s} {'median s':>9s} {'x baseline':>10s}")
    for name, seconds in results.items():
        print(f"{name:45s} {seconds:9.3f} {seconds / baseline:10.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
