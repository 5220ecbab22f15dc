#!/usr/bin/env bash
# test_png_modes.sh: the panoptic PNG reader (data/png_io.c, both paths) against Pillow on
# every colour type x bit depth x tRNS x interlace (tests/png_modes_check.py). Without
# numpy or Pillow it prints SKIP and "0 passed, 0 failed".
# Usage: tests/test_png_modes.sh PNG_TOOL   (build/tests/png_tool or san_png_tool)
set -u
PY=${AVPS_PYTHON:-/usr/bin/python3}
TOOL=$1
if ! "$PY" -c 'import numpy, PIL' >/dev/null 2>&1; then
    echo "SKIP: $PY has no numpy or Pillow (scripts/setup-deps installs python3-numpy python3-pil)"
    echo "0 passed, 0 failed"
    exit 0
fi
T=$(mktemp -d /tmp/avps_png_modes_XXXXXX)
trap 'rm -rf "$T"' EXIT
"$PY" "$(dirname "$0")/png_modes_check.py" "$T" "$TOOL"
