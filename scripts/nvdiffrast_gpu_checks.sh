#!/usr/bin/env bash
# The nvdiffrast backend's checks that need a CUDA GPU, in one go; logs land in $1
# (default nvdr_gpu_report/) for docs/benchmarks.md. Run from the repository root on a CUDA
# machine with jaxface installed with the nvdiffrast extra (and the torch extra, with a CUDA
# torch, for the comparison with nvdiffrast's own ops):
#
#     bash scripts/nvdiffrast_gpu_checks.sh [out_dir]
set -euo pipefail
out=${1:-nvdr_gpu_report}
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
jaxface build-nvdiffrast 2>&1 | tee "$out/build.log"
python -m pytest -q -rs tests/render/test_nvdr_gpu.py tests/render/test_nvdr_ops.py \
    tests/render/test_backend.py 2>&1 | tee "$out/tests.log"
cd benchmarks
python rasterize.py --backends nvdiffrast torch jax --sizes 224 512 --batches 1 8 64 2>&1 \
    | tee "../$out/rasterize.log"
python train_step.py --sizes 224 --backends jax nvdiffrast 2>&1 | tee "../$out/train_step.log"
