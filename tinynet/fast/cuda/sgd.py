"""The momentum SGD update of one parameter in one launch, for either update rule.

Written with array operations, an update is five or six passes over the weights,
each a launch and a temporary array; here one thread updates one weight and its
velocity in registers. The rules are those of tinynet/optim/sgd.py.
"""

from .compile import elementwise

# v <- m v - wd lr w - lr g;  w <- w + v  (the AlexNet paper, section 5)
_paper = elementwise(
    "T g, T lr, T momentum, T decay", "T w, T v",
    "v = momentum * v - lr * (g + decay * w); w += v;",
    "tinynet_sgd_paper")

# v <- m v + (1 - dampening) d with d = g + wd w (v <- d on the first step);
# w <- w - lr v, or w - lr (d + m v) with Nesterov momentum  (torch.optim.SGD)
_pytorch = elementwise(
    "T g, T lr, T momentum, T dampening, T decay, int32 nesterov, int32 first", "T w, T v",
    """
    const T direction = decay != T(0) ? g + decay * w : g;
    v = first ? direction : momentum * v + (1 - dampening) * direction;
    w -= lr * (nesterov ? direction + momentum * v : v);
    """,
    "tinynet_sgd_pytorch")


def paper_step(w, g, v, lr, momentum, decay):
    _paper(g, lr, momentum, decay, w, v)


def pytorch_step(w, g, v, lr, momentum, dampening, decay, nesterov, first):
    _pytorch(g, lr, momentum, dampening, decay, int(nesterov), int(first), w, v)
