"""Local response normalisation across channels (AlexNet paper, section 3.3)."""

from .. import backend
from ..tensor import Function, ShapeError


class LocalResponseNorm(Function):
    """b[c] = a[c] / (k + alpha' * sum of a[j]^2 over n channels around c) ** beta

    The paper uses alpha' = alpha; PyTorch and Caffe use alpha' = alpha / n.
    ``alpha_over_n`` picks the convention. The window of channel c is
    [c - n//2, c + (n-1)//2], clipped at the edges, as in PyTorch.
    """

    def __init__(self, size, alpha=1e-4, beta=0.75, k=2.0, alpha_over_n=False):
        self.size, self.beta, self.k = size, beta, k
        self.alpha = alpha / size if alpha_over_n else alpha

    def forward(self, x):
        check_input(x.shape)
        scale = self.k + self.alpha * window_sum(x * x, self.size // 2, (self.size - 1) // 2)
        factor = scale ** (-self.beta)
        self.save_for_backward(x, scale, factor)
        return x * factor

    def backward(self, grad):
        x, scale, factor = self.saved_arrays
        # d b[i] / d a[j] = [i == j] factor[i] - 2 alpha beta a[i] a[j] factor[i] / scale[i]
        # for every i whose window holds j; j lies in i's window exactly when i lies
        # in the mirrored window of j, hence the swapped reach below.
        through_scale = window_sum(grad * x * factor / scale, (self.size - 1) // 2, self.size // 2)
        return (grad * factor - (2 * self.alpha * self.beta) * x * through_scale,)


def check_input(shape):
    if len(shape) != 4:
        raise ShapeError(f"expected input of shape (N, C, H, W), got {tuple(shape)}")


def window_sum(a, before, after):
    """out[:, c] = a[:, c-before : c+after+1].sum(axis=1), with zeros past the edges."""
    xp = backend.xp_of(a)
    channels = a.shape[1]
    padded = xp.pad(a, ((0, 0), (before, after), (0, 0), (0, 0)))
    out = padded[:, 0:channels].copy()
    for offset in range(1, before + after + 1):
        out += padded[:, offset : offset + channels]
    return out
