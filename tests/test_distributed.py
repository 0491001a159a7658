"""tinynet.distributed: the sampler's shares, the gradient buckets, the wrapper on one process,
and, under ``mpiexec -n 2`` (skipped where mpi4py or mpiexec is missing), data-parallel training
that equals one process, alexnet.py's train command, and a failing rank that stops the job."""

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import alexnet
import tinynet
import tinynet.distributed as dist
from tinynet import nn
from tinynet.data import DataLoader, TensorDataset
from tinynet.distributed import DistributedDataParallel, DistributedSampler, GradientBuckets, process_group
from tinynet.distributed.nccl import check_one_gpu_each
from tinynet.experiment import read_training_state
from tinynet.tensor import queue_callback

PROGRAMS = Path(__file__).resolve().parent / "mpi_programs"
ALEXNET = Path(__file__).resolve().parent.parent / "alexnet.py"


def numbered(count):
    return TensorDataset(np.arange(count, dtype=np.float32).reshape(count, 1), np.arange(count))


# -- DistributedSampler ----------------------------------------------------------------


@pytest.mark.parametrize("count, replicas", [(10, 2), (11, 3), (7, 4)])
def test_the_shares_cover_the_epoch_once_each(count, replicas):
    shares = [list(DistributedSampler(numbered(count), replicas, rank, seed=5)) for rank in range(replicas)]
    assert len({len(share) for share in shares}) == 1  # every rank takes as many steps
    covered = sorted(index for share in shares for index in share)
    assert set(covered) == set(range(count))
    # Read across the ranks, step by step, the shares are the epoch's order, its first indices
    # repeated at the end to make up the remainder.
    interleaved = [share[step] for step in range(len(shares[0])) for share in shares]
    order = np.random.default_rng([5, 0]).permutation(count)
    assert interleaved == np.resize(order, len(shares[0]) * replicas).tolist()


def test_drop_last_leaves_the_remainder_out_instead():
    shares = [list(DistributedSampler(numbered(11), 3, rank, seed=5, drop_last=True)) for rank in range(3)]
    covered = [index for share in shares for index in share]
    assert [len(share) for share in shares] == [3, 3, 3]
    assert len(set(covered)) == 9  # none twice, two of the eleven left out


def test_every_rank_reshuffles_alike_each_epoch():
    samplers = [DistributedSampler(numbered(12), 2, rank, seed=1) for rank in range(2)]
    orders = []
    for epoch in range(2):
        for sampler in samplers:
            sampler.set_epoch(epoch)
        orders.append([list(sampler) for sampler in samplers])
        assert set(orders[-1][0]).isdisjoint(orders[-1][1])
    assert orders[0] != orders[1]
    again = DistributedSampler(numbered(12), 2, 0, seed=1)
    again.set_epoch(1)
    assert list(again) == orders[1][0]  # from (seed, epoch) alone: a resumed run sees the same


def test_the_ranks_batches_together_are_one_process_batches():
    """Strided shares keep the global batches: step k of two ranks with batches of 4 holds the
    samples of step k of one process with batches of 8."""
    dataset = numbered(40)
    whole = DataLoader(dataset, 8, shuffle=True, drop_last=True, seed=7).batch_indices(0)
    shares = [DataLoader(dataset, 4, drop_last=True, seed=7,
                         sampler=DistributedSampler(dataset, 2, rank, seed=7, drop_last=True)).batch_indices(0)
              for rank in range(2)]
    assert [sorted(a + b) for a, b in zip(*shares)] == [sorted(batch) for batch in whole]


def test_pytorch_import_paths():
    from tinynet.utils.data import DistributedSampler as from_utils

    assert from_utils is DistributedSampler is dist.DistributedSampler


def test_the_loader_refuses_a_sampler_with_shuffle_and_counts_the_share():
    dataset = numbered(10)
    with pytest.raises(ValueError, match="sampler and shuffle=True"):
        DataLoader(dataset, 2, shuffle=True, sampler=DistributedSampler(dataset, 2, 0))
    assert len(DataLoader(dataset, 2, sampler=DistributedSampler(dataset, 2, 1))) == 3


def test_a_rank_outside_the_world_is_refused():
    with pytest.raises(ValueError, match="rank must be in 0..1"):
        DistributedSampler(numbered(4), 2, 2)


# -- gradient buckets ----------------------------------------------------------------------


def parameters(*shapes, dtype=np.float32):
    return [nn.Parameter(np.full(shape, i + 1, dtype)) for i, shape in enumerate(shapes)]


def test_buckets_fill_up_to_their_size_from_the_last_layer():
    params = parameters((1000,), (1000,), (300_000,), (10,))  # 4 kB, 4 kB, 1.2 MB, 40 B
    groups = GradientBuckets(params, bucket_mb=0.01).groups
    assert [[p.numel() for p in group] for group in groups] == [[10], [300_000], [1000, 1000]]


def test_buckets_keep_one_dtype_each_and_skip_frozen_parameters():
    params = parameters((4,), (4,)) + parameters((4,), dtype=np.float64)
    params[0].requires_grad_(False)
    groups = GradientBuckets(params).groups
    assert [[p.dtype for p in group] for group in groups] == [[np.float64], [np.float32]]


def test_averaging_divides_the_sum_and_counts_a_missing_grad_as_zeros():
    params = parameters((2, 3), (5,))
    params[0].grad = np.full((2, 3), 4.0, np.float32)
    messages = []

    def two_ranks_sum(buffer):  # as if a second rank held the same gradients
        messages.append(buffer.size)
        buffer *= 2

    GradientBuckets(params).average(two_ranks_sum, world_size=2)
    assert messages == [11]  # one message for both parameters
    np.testing.assert_array_equal(params[0].grad, np.full((2, 3), 4.0))
    np.testing.assert_array_equal(params[1].grad, np.zeros(5))


def test_averaging_writes_into_the_gradients_own_arrays():
    params = parameters((2, 3), (5,))
    params[0].grad = np.full((2, 3), 4.0, np.float32)
    before = params[0].grad
    GradientBuckets(params).average(lambda buffer: buffer, world_size=1)
    assert params[0].grad is before  # no new array per step; the missing one is made once
    assert params[1].grad is not None and not np.shares_memory(params[1].grad, params[0].grad)


def test_two_ranks_on_one_gpu_are_refused_for_nccl():
    check_one_gpu_each([("a", 0), ("a", 1), ("b", 0)])  # one GPU each, on two machines
    with pytest.raises(RuntimeError, match="ranks 0 and 2 both use GPU 0 of a: NCCL needs a GPU per rank"):
        check_one_gpu_each([("a", 0), ("a", 1), ("a", 0)])


# -- the wrapper and the engine on one process -----------------------------------------------


def small_model():
    tinynet.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def test_on_one_process_the_wrapper_changes_nothing():
    model = small_model()
    wrapped = DistributedDataParallel(model)
    x = tinynet.randn(5, 3)
    np.testing.assert_array_equal(wrapped(x).data, model(x).data)
    assert list(wrapped.state_dict()) == list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert wrapped.parameters() == model.parameters()
    wrapped.eval()
    assert not model[0].training
    plain = small_model()
    plain.load_state_dict(wrapped.state_dict())  # a checkpoint loads with or without the wrapper


def as_if_two_ranks(model):
    """The wrapper, made to average as under mpiexec -n 2 (each message counted; the other rank
    holds the same gradients), on this one process."""
    wrapped = DistributedDataParallel(model)
    wrapped.world_size, wrapped.messages = 2, []

    def two_ranks_sum(buffer):
        wrapped.messages.append(buffer.size)
        buffer *= 2

    wrapped._all_reduce = two_ranks_sum
    return wrapped


class TwoOutputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = small_model()

    def forward(self, x):
        out = self.net(x)
        return out, out * 2


def test_a_model_with_several_outputs_averages_its_gradients_once_per_backward():
    wrapped = as_if_two_ranks(TwoOutputs())
    first, second = wrapped(tinynet.randn(2, 3))
    (first.sum() + second.sum()).backward()
    assert wrapped.messages == [26]  # one bucket of the 26 parameters, sent once


def test_a_model_whose_output_holds_no_tensor_is_refused():
    class Named(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = small_model()

        def forward(self, x):
            return {"logits": self.net(x)}

    with pytest.raises(TypeError, match="expected a Tensor, or a tuple or list holding Tensors, got dict"):
        as_if_two_ranks(Named())(tinynet.randn(2, 3))


def test_no_sync_accumulates_locally_and_the_next_backward_averages():
    wrapped = as_if_two_ranks(small_model())
    with wrapped.no_sync():
        wrapped(tinynet.randn(2, 3)).sum().backward()
    assert wrapped.messages == []  # nothing sent inside the block
    local = [p.grad.copy() for p in wrapped.parameters()]
    x = tinynet.randn(2, 3)
    wrapped(x).sum().backward()
    assert wrapped.messages == [26]
    plain = small_model()  # the same weights: the gradients of both batches, added up
    plain(x).sum().backward()
    for param, kept, extra in zip(wrapped.parameters(), local, plain.parameters()):
        np.testing.assert_allclose(param.grad, kept + extra.grad, rtol=1e-6)


def test_callbacks_queued_in_backward_run_once_every_gradient_is_complete():
    model = small_model()
    seen = []

    class Marker(tinynet.Function):
        def forward(self, x):
            return x

        def backward(self, grad_output):
            queue_callback(lambda: seen.append([p.grad is not None for p in model.parameters()]))
            return (grad_output,)

    Marker()(model(tinynet.randn(2, 3))).sum().backward()
    assert seen == [[True] * 4]  # once, after the last layer's first gradient and the first layer's
    model(tinynet.randn(2, 3)).sum().backward()
    assert len(seen) == 1  # the queue empties with each backward


def test_one_process_collectives_return_at_once():
    array = np.arange(3.0)
    assert dist.world_size() == 1 and dist.rank() == 0
    assert dist.all_reduce(array) is array and array.tolist() == [0, 1, 2]
    assert dist.broadcast_object_list(["a"]) == ["a"]
    assert [a.tolist() for a in dist.all_gather([], array)] == [[0, 1, 2]]


def test_a_launch_without_mpi4py_says_what_to_install(monkeypatch):
    monkeypatch.setattr(process_group, "_world", None)
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py fails
    with pytest.raises(RuntimeError, match=r"one of 2 started by mpiexec, but mpi4py is not installed.*\[mpi\]"):
        dist.init()


def test_only_mpi_process_groups():
    with pytest.raises(ValueError, match="over MPI"):
        dist.init_process_group("nccl")


# -- under mpiexec ------------------------------------------------------------------------------


def mpiexec():
    pytest.importorskip("mpi4py")
    beside_python = Path(sys.executable).parent / "mpiexec"  # the MPI that pip installed with mpi4py
    found = str(beside_python) if beside_python.exists() else shutil.which("mpiexec")
    if found is None:
        pytest.skip("no mpiexec: pip install -e '.[mpi]'")
    return found


def run(*command, processes=None, cwd=None, timeout=180):
    launcher = [mpiexec(), "-n", str(processes)] if processes else []
    return subprocess.run([*launcher, sys.executable, *map(str, command)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


@pytest.mark.parametrize("device", ["cpu", pytest.param("gpu", marks=pytest.mark.skipif(
    not tinynet.gpu_available(), reason="needs CuPy and a CUDA GPU"))])
def test_two_processes_train_as_one_with_the_same_global_batch(tmp_path, device):
    """Dropout off, batches of 16 in one process against 8 + 8 in two, six SGD steps with momentum
    and weight decay: the same weights, to float32 summation order (on the GPU, the gradients
    travel through host memory)."""
    for name, processes in (("one", None), ("two", 2)):
        done = run(PROGRAMS / "equivalence.py", tmp_path / f"{name}.npz", device, processes=processes)
        assert done.returncode == 0, done.stderr
    one, two = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    assert one.files == two.files and len(one.files) == 17
    for name in one.files:
        np.testing.assert_allclose(two[name], one[name], rtol=1e-4, atol=1e-6, err_msg=name)
    tinynet.manual_seed(0)
    start = alexnet.AlexNet("small", 10, 1).state_dict()  # rank 0's weights before the steps
    assert all(np.abs(one[name] - start[name]).max() > 1e-4 for name in start)  # every layer was trained


@pytest.mark.parametrize("how", ["raise", "kill"])
def test_a_failing_rank_stops_the_job_instead_of_a_hang(how):
    done = run(PROGRAMS / "stop_on_one_rank.py", how, processes=2, timeout=60)
    assert done.returncode != 0
    assert "rank 0 went on alone" not in done.stdout
    if how == "raise":
        assert "rank 1 of 2 stopped with ValueError" in done.stderr


def test_a_ctrl_c_on_one_rank_outside_the_training_loop_stops_the_job(tmp_path):
    done = run(PROGRAMS / "interrupt_one_rank.py", tmp_path / "run", processes=2, timeout=120)
    assert done.returncode != 0
    assert "interrupted" in done.stderr
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


TRAIN = ["train", "--preset", "small", "--limit", "256", "--batch-size", "32", "--workers", "0", "--quiet"]


def weights(run_dir):
    arrays, _ = read_training_state(run_dir / "checkpoint.npz")
    return {name: array for name, array in arrays.items() if name.startswith("model.")}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.mark.slow
def test_alexnet_trains_in_two_processes_and_resumes_exactly(tmp_path):
    straight = run(ALEXNET, *TRAIN, "--epochs", "2", "--run-dir", "straight", processes=2, cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr
    assert straight.stdout.count("training the small AlexNet") == 1  # rank 0 alone prints
    assert "in 2 processes" in straight.stdout and straight.stdout.count("epoch 2:") == 1
    assert (tmp_path / "straight" / "metrics.csv").read_text().count("\n") == 3
    for epochs in ("1", "2"):  # an epoch, then --resume for the second: dropout draws continue per rank
        resumed = run(ALEXNET, *TRAIN, "--epochs", epochs, "--run-dir", "resumed", *["--resume"] * (epochs == "2"),
                      processes=2, cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr
    assert_same_weights(weights(tmp_path / "resumed"), weights(tmp_path / "straight"))
    alone = run(ALEXNET, *TRAIN, "--epochs", "3", "--run-dir", "straight", "--resume", cwd=tmp_path)
    assert alone.returncode == 2
    assert "trained in 2 process(es), this is 1" in alone.stderr and "mpiexec -n 2" in alone.stderr


@pytest.mark.slow
def test_ctrl_c_stops_every_rank_at_one_step_and_the_run_resumes_exactly(tmp_path):
    flags = [*TRAIN, "--limit", "6400", "--epochs", "1"]
    job = subprocess.Popen([mpiexec(), "-n", "2", sys.executable, str(ALEXNET), *flags, "--run-dir", "stopped"],
                           cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "training the" in job.stdout.readline()
    time.sleep(1.0)  # some steps in
    job.send_signal(signal.SIGINT)  # what Ctrl-C does: mpiexec passes it to every rank
    _, err = job.communicate(timeout=120)
    assert job.returncode == 128 + signal.SIGINT, err
    _, meta = read_training_state(tmp_path / "stopped" / "checkpoint.npz")
    assert 0 < meta["progress"]["batch"] < 200 and len(meta["rank_rngs"]) == 2
    resumed = run(ALEXNET, *flags, "--run-dir", "stopped", "--resume", processes=2, cwd=tmp_path)
    straight = run(ALEXNET, *flags, "--run-dir", "straight", processes=2, cwd=tmp_path)
    assert resumed.returncode == straight.returncode == 0, resumed.stderr + straight.stderr
    assert_same_weights(weights(tmp_path / "stopped"), weights(tmp_path / "straight"))


def test_a_batch_that_does_not_divide_among_the_ranks_is_refused(tmp_path):
    done = run(ALEXNET, *TRAIN, "--batch-size", "31", "--epochs", "1", processes=2, cwd=tmp_path, timeout=60)
    assert done.returncode != 0
    assert "--batch-size 31 does not divide among 2 processes" in done.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("checkpoint.npz"))
