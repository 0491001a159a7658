"""The fully-connected layer: the textbook version."""

from ..tensor import Function, ShapeError


def check_linear_input(x_shape, weight_shape):
    if len(x_shape) != 2 or x_shape[1] != weight_shape[1]:
        raise ShapeError(f"expected input of shape (N, {weight_shape[1]}), got {tuple(x_shape)}")


class Linear(Function):
    """y = x W^T + b, with W of shape (out_features, in_features) as in PyTorch."""

    def forward(self, x, weight, *bias):
        check_linear_input(x.shape, weight.shape)
        self.save_for_backward(x, weight)
        out = x @ weight.T
        return out + bias[0] if bias else out

    def backward(self, grad):
        x, weight = self.saved_arrays
        grad_bias = (grad.sum(axis=0),) if len(self.inputs) == 3 else ()
        return (grad @ weight, grad.T @ x) + grad_bias
