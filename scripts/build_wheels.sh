#!/usr/bin/env bash
# Build the wheels of audio-core and of every plugin in plugins/ (not the _template) into
# one folder, dist/ by default, so that from a clone
#
#     scripts/build_wheels.sh
#     pip install -c constraints.txt --find-links dist audio-core audio-plugin-bsq
#
# installs audio-core and a plugin with no package index holding them (their dependencies,
# torch included, still come from the index; constraints.txt pins torch to the CPU wheel).
# Usage: scripts/build_wheels.sh [OUT_DIR]   (PYTHON=... picks the interpreter)
# The release checklist is in docs/releasing.md.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/dist}"
python="${PYTHON:-python3}"

packages=("$root")
for plugin in "$root"/plugins/*/; do
    case "$(basename "$plugin")" in _*) continue ;; esac
    [ -f "$plugin/pyproject.toml" ] && packages+=("${plugin%/}")
done

mkdir -p "$out"
"$python" -m pip wheel --quiet --no-deps --wheel-dir "$out" "${packages[@]}"
echo "built ${#packages[@]} wheels into $out:"
ls -1 "$out"/*.whl
