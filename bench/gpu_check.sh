#!/usr/bin/env bash
# Every check that needs a GPU, in one run, the most telling first:
#   1. the kernels' tests: each against the reference path, a training step that never
#      waits for the GPU, the fused SGD update, the TF32 switch;
#   2. whole-AlexNet training and inference against PyTorch, TF32 off and on in both;
#   3. every layer against PyTorch, TF32 off and on;
#   4. where a training step's GPU time goes, Function by Function, and the GEMMs alone;
#   5. the default run (python alexnet.py) on the GPU, timed, twice (the first compiles);
#   6. lesson 10 (the GPU lesson) executed as a script;
#   7. every other test that runs on the GPU (float64 gradient checks of every Function).
# Usage: bash bench/gpu_check.sh [folder]   (default gpu_check/): everything printed is also
# written to folder/gpu_check.log. GPU_CHECK_PROFILE=1 adds a profile of one epoch of the
# default run (folder/profile.txt), sorted by the time spent in each function itself.
set -u
cd "$(dirname "$0")/.."
out=${1:-gpu_check}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 MPLBACKEND=Agg
# GPU machines often run as root, where OpenMPI's mpiexec (the distributed tests) refuses to start.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
runs=$(mktemp -d)

step() {  # step NAME SECONDS COMMAND...: run with a time limit, then report its status and time
    local name=$1 limit=$2 start=$SECONDS
    shift 2
    echo -e "\n=== $name: $*"
    timeout "$limit" "$@"
    echo "=== $name: exit $? after $((SECONDS - start)) s"
}

main() {
echo "=== $(date -Is) $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader)"
python3 -c "import cupy, numpy, torch; print('cupy', cupy.__version__, '| numpy', numpy.__version__,
'| torch', torch.__version__, torch.version.cuda)"
step kernel-tests 150 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_layer_paths.py
step alexnet 240 python3 bench/alexnet.py --device gpu --batch 128 --tf32 both --no-reference
step layers 60 python3 bench/layers.py --device gpu --batch 128
step layers-tf32 60 python3 bench/layers.py --device gpu --batch 128 --tf32
step profile-step 90 python3 bench/profile_step.py --device gpu --batch 128
# The default run twice: the first compiles the CUDA kernels (CuPy keeps them in ~/.cupy) and,
# on a new machine, builds matplotlib's font cache; the second is what a user sees from then on.
step default-run 120 python3 alexnet.py --device gpu --run-dir "$runs/default"
step default-run-again 120 python3 alexnet.py --device gpu --run-dir "$runs/again"
if [ "${GPU_CHECK_PROFILE:-0}" = 1 ]; then
    step profile 90 python3 -m cProfile -o "$runs/profile.out" alexnet.py --device gpu --epochs 1 \
        --run-dir "$runs/profiled"
    python3 -c "import pstats; pstats.Stats('$runs/profile.out').sort_stats('tottime').print_stats(45)" \
        > "$out/profile.txt"
fi
step lesson-10 120 python3 -c "import json; exec('\n'.join(''.join(c['source']) for c in
json.load(open('tutorials/10_gpu.ipynb'))['cells'] if c['cell_type'] == 'code'))"
step gpu-tests 300 python3 -m pytest -q -p no:cacheprovider -k "gpu or cuda" tests \
    --ignore tests/test_cuda.py --ignore tests/test_layer_paths.py
}

main 2>&1 | tee "$out/gpu_check.log"
rm -rf "$runs"
