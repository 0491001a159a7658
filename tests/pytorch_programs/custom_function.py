"""Custom autograd Functions, written as for PyTorch: the swish activation and a linear
layer, each with a hand-written backward, checked against the same math built from
differentiable operations, then used to fit a small regression with a hand-written update.

The test harness runs this file with `torch` bound to PyTorch and to tinynet.
"""

import numpy as np
import torch


class Swish(torch.autograd.Function):
    """x * sigmoid(x), whose derivative is s + x s (1 - s)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * torch.sigmoid(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(x)
        return grad_output * (s + x * s * (1 - s))


class LinearFunction(torch.autograd.Function):
    """y = x W^T + b, returning no gradient for what does not need one."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        return x.mm(weight.t()) + bias

    @staticmethod
    def backward(ctx, grad_output):
        x, weight = ctx.saved_tensors
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_output.mm(weight)
        if ctx.needs_input_grad[1]:
            grad_weight = grad_output.t().mm(x)
        if ctx.needs_input_grad[2]:
            grad_bias = grad_output.sum(0)
        return grad_x, grad_weight, grad_bias


def gradients_against_autograd(x, weight, bias):
    """The custom Functions' gradients and those of the same math from built-in operations."""
    results = {}
    for name, swish, linear in (("custom", Swish.apply, LinearFunction.apply),
                                ("autograd", lambda t: t * torch.sigmoid(t), lambda t, w, b: t @ w.T + b)):
        xs = torch.tensor(x, requires_grad=True)
        w = torch.tensor(weight, requires_grad=True)
        b = torch.tensor(bias, requires_grad=True)
        out = swish(linear(xs, w, b)).pow(2).mean()
        out.backward()
        results[name] = [out.item(), xs.grad.tolist(), w.grad.tolist(), b.grad.tolist()]
    return results


def fit(x, y, steps=200, lr=0.1):
    """Fit y ~ swish(x w + b) with a hand-written gradient step; returns the losses."""
    x, y = torch.tensor(x), torch.tensor(y)
    w = torch.zeros(x.shape[1], 1, requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    losses = []
    for _ in range(steps):
        prediction = Swish.apply(LinearFunction.apply(x, w.t(), b))
        loss = ((prediction - y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            w -= lr * w.grad
            b -= lr * b.grad
        w.grad = None
        b.grad = None
        losses.append(loss.item())
    return losses, np.asarray(w.detach()).ravel()
