#!/usr/bin/env bash
# Proof for the install promise: a plain `pip install .` gives a working veil where libGL is
# missing (slim containers, servers). Needs root (a private mount namespace hides libGL by
# bind-mounting /dev/null over it, for this process tree only), no docker daemon.
#   sudo scripts/check_no_libgl.sh [IMAGE]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$repo" 2>&1 | grep -v "is ignored" || true
echo "installed size: $(du -sh "$work/venv" | cut -f1)"
image="${1:-}"
unshare -m bash -s "$work" "$image" <<'INNER'
set -euo pipefail
work="$1"; image="$2"
for lib in /lib/x86_64-linux-gnu/libGL.so.1 /usr/lib/x86_64-linux-gnu/libGL.so.1; do
  [ -e "$lib" ] && mount --bind /dev/null "$(readlink -f "$lib")"
done
"$work/venv/bin/python" - <<'PY'
import ctypes
try:
    ctypes.CDLL("libGL.so.1")
    raise SystemExit("libGL is still loadable: the check proves nothing")
except OSError:
    print("libGL hidden")
import cv2, veil
print("import veil", veil.__version__, "with cv2", cv2.__version__)
PY
"$work/venv/bin/veil" info | head -3
if [ -n "$image" ]; then "$work/venv/bin/veil" anonymize "$image" -o "$work/out.jpg" && ls -la "$work/out.jpg"; fi
INNER
