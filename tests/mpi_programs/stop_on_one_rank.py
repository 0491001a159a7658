"""Rank 1 fails while rank 0 waits for it in a collective: the job must end, not hang.

    mpiexec -n 2 python stop_on_one_rank.py raise   # an uncaught exception on rank 1
    mpiexec -n 2 python stop_on_one_rank.py kill    # rank 1 killed outright (SIGKILL)
"""

import os
import signal
import sys

import numpy as np

import tinynet.distributed as dist

if dist.rank() == 1:
    if sys.argv[1] == "raise":
        raise ValueError("rank 1 cannot go on")
    os.kill(os.getpid(), signal.SIGKILL)
dist.all_reduce(np.ones(3))
print("rank 0 went on alone", flush=True)
