"""The scaling model and the step summary of bench/distributed.py (its pure functions, no timing)."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.append(str(BENCH))  # appended: bench/alexnet.py must not hide the model's alexnet.py
_spec = importlib.util.spec_from_file_location("bench_distributed", BENCH / "distributed.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

# About the seed preset on a 2-core CPU: 0.1 s fixed + 42 ms an image, 250 MB of gradients.
COST = bench.Cost(fixed=0.1, per_image=0.042, nbytes=250_000_000, buckets=5, copy=0.1)
SLOW, FAST = bench.gbit(10), bench.gbit(100)


@pytest.mark.parametrize("speedup", [bench.weak_speedup, bench.strong_speedup])
def test_one_machine_is_the_unit(speedup):
    assert speedup(COST, 1, SLOW) == pytest.approx(1.0)


@pytest.mark.parametrize("speedup", [bench.weak_speedup, bench.strong_speedup])
@pytest.mark.parametrize("machines", [2, 4, 8, 16, 32, 64])
def test_n_machines_gain_but_less_than_n(speedup, machines):
    assert 1 < speedup(COST, machines, FAST) < machines


@pytest.mark.parametrize("speedup", [bench.weak_speedup, bench.strong_speedup])
def test_more_bandwidth_scales_better(speedup):
    assert speedup(COST, 8, FAST) > speedup(COST, 8, SLOW)


def test_weak_scaling_beats_strong_scaling():
    # Strong scaling shrinks each machine's compute while the gradient stays the same size.
    assert bench.weak_speedup(COST, 16, SLOW) > bench.strong_speedup(COST, 16, SLOW)


def test_ring_sends_twice_the_buffer_less_one_share():
    nbytes, bandwidth = 1_000_000, 1e9
    assert bench.ring_all_reduce_seconds(nbytes, 1, bandwidth, buckets=3) == 0.0
    assert bench.ring_all_reduce_seconds(nbytes, 2, bandwidth, buckets=3, latency=0) == pytest.approx(1e-3)
    assert bench.ring_all_reduce_seconds(nbytes, 4, bandwidth, buckets=3, latency=0) == pytest.approx(1.5e-3)
    # 2 (N - 1) hops for each bucket, each paying the latency.
    assert bench.ring_all_reduce_seconds(0, 4, bandwidth, buckets=3, latency=1e-5) == pytest.approx(18e-5)


def test_gbit_is_bytes_per_second():
    assert bench.gbit(10) == 1.25e9


def test_compute_line_through_two_batches():
    fixed, per_image, how = bench.compute_line({32: 0.1 + 32 * 0.04, 64: 0.1 + 64 * 0.04})
    assert (fixed, per_image) == pytest.approx((0.1, 0.04))
    assert "32 and 64" in how


def test_compute_line_from_one_batch_or_a_line_below_zero_has_no_fixed_part():
    assert bench.compute_line({64: 3.2})[:2] == (0.0, 0.05)
    fixed, per_image, how = bench.compute_line({32: 2.0, 64: 5.0})  # the line would give -1 s at no images
    assert (fixed, per_image) == (0.0, 5.0 / 64)
    assert "-1000.0 ms at no images" in how


def _rank(rank, steps):
    times = [dict(step=s, averaging=a, wait=w, all_reduce=r) for s, a, w, r in steps]
    return {"rank": rank, "times": times, "checksum": 1.5, "peak_rss_mb": 100.0}


def test_summary_takes_the_longest_wait_and_the_rest_by_rank_mean():
    reports = [_rank(0, [(1.0, 0.30, 0.00, 0.10), (1.2, 0.30, 0.00, 0.10), (1.1, 0.30, 0.00, 0.10)]),
               _rank(1, [(1.0, 0.40, 0.10, 0.10), (1.2, 0.40, 0.10, 0.10), (1.1, 0.40, 0.10, 0.10)])]
    summary = bench.summarise(reports)
    assert summary["step"] == pytest.approx(1.1)
    assert (summary["fastest"], summary["slowest"]) == pytest.approx((1.0, 1.2))
    assert summary["wait"] == pytest.approx(0.1)
    assert summary["all_reduce"] == pytest.approx(0.1)
    assert summary["compute"] == pytest.approx(1.1 - 0.35)
    assert summary["copy"] == pytest.approx(0.35 - 0.05 - 0.1)  # the mean wait leaves the copy
    assert summary["replicas_equal"]
    reports[1]["checksum"] = 1.25
    assert not bench.summarise(reports)["replicas_equal"]
