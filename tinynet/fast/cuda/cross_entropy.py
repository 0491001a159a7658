"""Softmax cross-entropy in one launch forward (the loss itself, not each row's) and one
backward.

Forward runs as one block of up to 1024 threads. Each warp of 32 takes a row at a
time; its threads stride along the row together (neighbouring threads read
neighbouring logits), then combine their maxima and sums by shuffling registers
(log-sum-exp: the maximum is taken out before exp, so it cannot overflow). The
warps' sums meet in shared memory, and thread 0 writes the loss: a fixed order
of additions, so the same numbers give the same loss on every run.

The targets are checked without waiting for the GPU: a target outside
[0, classes) that is not ``ignore_index`` makes its row's loss NaN, and with it the
batch's. (Checking them from Python would copy them back and stall the GPU every
step: the training loop checks the labels while they are still on the host.)
"""

from ... import backend
from .compile import check_32_bit, elementwise, templated

_SOURCE = r"""
template <typename T>
__device__ T warp_max(T value) {
    for (int offset = 16; offset > 0; offset /= 2) value = max(value, __shfl_xor_sync(0xffffffff, value, offset));
    return value;
}

template <typename T>
__device__ T warp_sum(T value) {
    for (int offset = 16; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffff, value, offset);
    return value;
}

// log_sum_exp[r] and losses[r] of each row r (0 for a row whose target is ignore_index);
// total = [the sum of the kept rows' losses, how many rows were kept, their mean loss].
template <typename T>
__global__ void softmax_cross_entropy(const T* logits, const long long* targets, int rows, int classes,
                                      long long ignore_index, T* log_sum_exp, T* losses, T* total) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    T warp_loss = 0, warp_kept = 0;
    for (int r = warp; r < rows; r += warps) {
        const T* row = logits + (long long)r * classes;
        T largest = row[0];
        for (int j = lane; j < classes; j += 32) largest = max(largest, row[j]);
        largest = warp_max(largest);
        T sum = 0;
        for (int j = lane; j < classes; j += 32) sum += exp(row[j] - largest);
        const T lse = largest + log(warp_sum(sum));
        const long long target = targets[r];
        const bool kept = target != ignore_index, known = 0 <= target && target < classes;
        const T loss = !kept ? T(0) : known ? lse - row[target] : T(nan(""));
        if (lane == 0) {
            log_sum_exp[r] = lse;
            losses[r] = loss;
        }
        warp_loss += loss;
        warp_kept += kept;
    }
    __shared__ T sums[2][32];
    if (lane == 0) {
        sums[0][warp] = warp_loss;
        sums[1][warp] = warp_kept;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        T loss = 0, kept = 0;
        for (int w = 0; w < warps; ++w) {
            loss += sums[0][w];
            kept += sums[1][w];
        }
        total[0] = loss;
        total[1] = kept;
        total[2] = loss / kept;  // 0/0 = NaN when every row is ignored, as in torch
    }
}
"""

_forward = templated(_SOURCE, "softmax_cross_entropy")

# d loss / d logit[r, j] = (softmax[r, j] - [j == target r]) * d loss / d row r's loss
_backward = elementwise(
    "raw T logits, raw T log_sum_exp, raw int64 targets, raw T upstream, raw T total, int32 classes, "
    "int64 ignore_index, int32 per_row, int32 mean", "T grad",
    """
    const unsigned int index = i, r = index / classes;
    const long long target = targets[r];
    T row_grad = per_row ? upstream[r] : upstream[0];
    if (mean) row_grad /= total[1];
    const T softmax = exp(logits[i] - log_sum_exp[r]);
    grad = target == ignore_index ? T(0) : (softmax - (index % classes == target)) * row_grad;
    """,
    "tinynet_softmax_cross_entropy_backward")


def softmax_cross_entropy(logits, targets, ignore_index):
    """(log_sum_exp, losses, total): each row's log-sum-exp and loss, and [the sum of the kept
    rows' losses, how many rows were kept, their mean]. ``targets`` are int64 on the GPU."""
    cupy = backend.cupy
    logits = check_32_bit(cupy.ascontiguousarray(logits))
    rows, classes = logits.shape
    log_sum_exp, losses, total = cupy.empty(rows, logits.dtype), cupy.empty(rows, logits.dtype), \
        cupy.empty(3, logits.dtype)
    threads = min(1024, 32 * max(rows, 1))
    _forward(logits.dtype)((1,), (threads,), (logits, targets, rows, classes, ignore_index, log_sum_exp, losses,
                                              total))
    return log_sum_exp, losses, total


def softmax_cross_entropy_backward(logits, log_sum_exp, targets, upstream, total, ignore_index, reduction):
    """d loss / d logits, for ``upstream`` = d loss / d (the loss, or each row's loss with reduction 'none')."""
    cupy = backend.cupy
    upstream = cupy.ascontiguousarray(upstream, dtype=logits.dtype).reshape(-1)
    per_row, mean = int(reduction == "none"), int(reduction == "mean")
    return _backward(logits, log_sum_exp, targets, upstream, total, logits.shape[1], ignore_index, per_row, mean,
                     cupy.empty_like(logits))
