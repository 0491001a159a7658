"""Rank 1 is interrupted (KeyboardInterrupt) while it reads the data, outside the training
loop's agreed stop, while rank 0 goes on to its first collective: the job must end, not hang.

    mpiexec -n 2 python interrupt_one_rank.py RUN_DIR
"""

import sys

import alexnet
import tinynet.distributed as dist

if dist.rank() == 1:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    alexnet.image_data = interrupted
sys.exit(alexnet.main(["train", "--preset", "small", "--limit", "256", "--batch-size", "32", "--workers", "0",
                       "--quiet", "--epochs", "1", "--run-dir", sys.argv[1]]))
