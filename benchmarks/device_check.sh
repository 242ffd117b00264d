#!/usr/bin/env bash
# The one short check to run where a GPU is lent (the workplace's `device` tool runs it in
# a copy of this checkout): CuPy into a virtual environment, then tests/test_cupy.py with
# CuPy required (a missing CuPy or GPU fails instead of skipping), and the host-guard
# double's tests beside it. Output goes to stdout and, where the tool sets $OUT, to
# $OUT/device_check.log.
#
#     bash benchmarks/device_check.sh            # about 2-5 minutes, most of it the install
#
# The machine may have no network: then CuPy must already be importable (a system
# install), and the script says so instead of failing obscurely.
set -uo pipefail
cd "$(dirname "$0")/.."
LOG="${OUT:-/tmp}/device_check.log"
exec > >(tee "$LOG") 2>&1

echo "== device"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || echo "no nvidia-smi"
python3 --version

echo "== environment"
python3 -m venv --system-site-packages .venv-device || exit 2
# shellcheck disable=SC1091
source .venv-device/bin/activate
if ! python -c "import cupy" 2>/dev/null; then
    cuda_major=$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: \([0-9]*\).*/\1/p' | head -1)
    wheel="cupy-cuda${cuda_major:-12}x"
    echo "installing $wheel"
    timeout 300 python -m pip install -q "$wheel" \
        || timeout 300 python -m pip install -q cupy-cuda12x \
        || { echo "CuPy could not be installed (no network on this machine?) and is not"
             echo "importable: nothing to check"; exit 3; }
fi
python -c "import numpy, scipy; print('numpy', numpy.__version__, 'scipy', scipy.__version__)" \
    || timeout 300 python -m pip install -q numpy scipy pytest hypothesis
python -c "import pytest" 2>/dev/null || timeout 300 python -m pip install -q pytest hypothesis
python -c "import cupy; print('cupy', cupy.__version__, 'devices',
cupy.cuda.runtime.getDeviceCount())" || exit 4

echo "== tests"
start=$(date +%s)
DUALREV_REQUIRE_EXTRAS=cupy python -m pytest -q -p no:cacheprovider -o addopts="" -rs \
    tests/test_cupy.py tests/test_duck_arrays.py
status=$?
echo "== done in $(( $(date +%s) - start )) s, pytest exit status $status"
exit $status
