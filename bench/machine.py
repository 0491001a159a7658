"""What a benchmark ran on, printed at the top of every table, and the helpers they share.

A speed ratio means little without the machine behind it: the CPU, how many cores,
which BLAS with how many threads, which OpenBLAS variables were set (they can
change which kernels run) and which allocator (fresh memory is slow on some VMs).

Importing this module also puts the repository root first on ``sys.path``, so that
``import alexnet`` finds the model and not ``bench/alexnet.py`` itself.
"""

import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_info():
    """BLAS library, its CPU kernels and threads: threadpoolctl knows, numpy.show_config half-knows."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        import numpy as np

        config = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{config['name']} {config['version']} (threads: pip install threadpoolctl to see them)"
    pools = [p for p in threadpool_info() if p["user_api"] == "blas"]
    return "; ".join(f"{p['internal_api']} {p['version']} {p.get('architecture', '')} {p['num_threads']} threads"
                     for p in pools) or "none found"


def set_threads(threads, torch_too=True):
    """The same number of threads for OpenBLAS (numpy) and PyTorch; returns a note on how."""
    if torch_too:  # a memory measurement of tinynet alone must not load PyTorch
        import torch

        torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return f"torch {threads} threads; numpy: OpenBLAS default (OPENBLAS_NUM_THREADS to change it)"
    threadpool_limits(threads, user_api="blas")
    return f"{threads} threads each (torch.set_num_threads, threadpoolctl)"


def allocator():
    preload = os.environ.get("LD_PRELOAD", "")
    for name in ("jemalloc", "tcmalloc", "mimalloc"):
        if name in preload:
            return f"{name} (LD_PRELOAD={preload})"
    return "glibc malloc (no LD_PRELOAD)"


def print_machine(device="cpu", threads_note=""):
    """The machine, and PyTorch's version and threads if this benchmark compares against it
    (``bench/data.py`` measures tinynet alone and never loads it)."""
    import numpy as np

    torch = sys.modules.get("torch")
    print(f"date:      {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"cpu:       {cpu_model()}, {len(os.sched_getaffinity(0))} cores usable, {os.cpu_count()} online")
    print(f"python:    {platform.python_version()}, numpy {np.__version__}"
          + (f", torch {torch.__version__}" if torch else ""))
    print(f"blas:      {blas_info()}")
    if torch:
        print(f"torch:     {torch.get_num_threads()} threads, mkldnn={torch.backends.mkldnn.is_available()}")
    if threads_note:
        print(f"threads:   {threads_note}")
    blas_env = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS_", "OMP_", "MKL_"))}
    print(f"env:       {blas_env or 'no OPENBLAS_*, OMP_* or MKL_* variables set'}")
    print(f"allocator: {allocator()}")
    print(f"load:      {' '.join(f'{x:.1f}' for x in os.getloadavg())} (1, 5, 15 min; a figure above the "
          f"core count means other processes shared the CPU)")
    if device == "gpu":
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        cuda = f", torch cuda {torch.version.cuda}" if torch else ""
        print(f"gpu:       {props['name'].decode()}, cupy {cupy.__version__}{cuda}")
    print()


def set_tf32(enabled, torch_too=True):
    """TF32 on or off for the float32 products and convolutions of both frameworks, so that a
    ratio compares like with like: PyTorch's own default is on for cuDNN's convolutions and
    off for matrix products; tinynet's convolutions are matrix products, off by default."""
    import tinynet

    tinynet.set_float32_matmul_precision("high" if enabled else "highest")
    if torch_too:
        import torch

        torch.backends.cuda.matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled


def synchronize(device):
    """Wait for queued GPU work, so a timer measures it and not just its launch."""
    if device == "gpu":
        import cupy
        import torch

        cupy.cuda.Device().synchronize()
        torch.cuda.synchronize()


def timed(function, device="cpu"):
    """Seconds one call takes, and its result."""
    synchronize(device)
    start = time.perf_counter()
    result = function()
    synchronize(device)
    return time.perf_counter() - start, result


def median(values):
    return statistics.median(values) if values else float("nan")


def reset_peak_rss():
    """Start VmHWM afresh from the current resident set (Linux 4.0+); False where it cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def rss_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb():
    """This process's peak resident set (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
