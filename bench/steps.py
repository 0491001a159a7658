"""One AlexNet training step and one inference pass, in tinynet and in PyTorch.

Shared by the whole-network benchmark and the profile: the same layers with the
same weights, the same inputs, and the same momentum SGD (lr 0.01, momentum 0.9,
weight decay 5e-4) on both sides.
"""

import machine  # noqa: F401  (first: it puts the repository root on sys.path for "import alexnet")
import numpy as np

import alexnet
import tinynet
from tinynet import Tensor, backend, optim
from tinynet import functional as F

SGD = dict(lr=0.01, momentum=0.9, weight_decay=5e-4)


def tinynet_model(preset, device):
    tinynet.manual_seed(0)
    model = alexnet.AlexNet(preset, num_classes=1000, in_channels=3).to(device)
    return model, optim.SGD(model.parameters(), **SGD)


def torch_model(model, device):
    """The same layers in PyTorch, with the tinynet model's weights copied in."""
    import torch

    nn = torch.nn
    layers = []
    for layer in list(model.features) + [nn.Flatten()] + list(model.classifier):
        kind = type(layer).__name__
        if isinstance(layer, nn.Flatten):
            layers.append(layer)
        elif kind == "Conv2d":
            layers.append(nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                                    layer.padding, groups=layer.groups))
        elif kind == "Linear":
            layers.append(nn.Linear(layer.in_features, layer.out_features))
        elif kind == "LocalResponseNorm":  # torch divides alpha by the size; undo it unless tinynet does too
            alpha = layer.alpha if layer.alpha_over_n else layer.alpha * layer.size
            layers.append(nn.LocalResponseNorm(layer.size, alpha, layer.beta, layer.k))
        elif kind == "MaxPool2d":
            layers.append(nn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding))
        elif kind == "Dropout":
            layers.append(nn.Dropout(layer.p))
        elif kind == "ReLU":
            layers.append(nn.ReLU())
        else:
            raise TypeError(f"no PyTorch counterpart for {kind}")
    net = nn.Sequential(*layers)
    with torch.no_grad():
        for ours, theirs in zip(model.parameters(), net.parameters(), strict=True):
            theirs.copy_(torch.from_numpy(backend.to_numpy(ours.data)))
    net = net.to("cuda" if device == "gpu" else "cpu")
    return net, torch.optim.SGD(net.parameters(), **SGD)


def batch_of(size):
    """Random 227x227 float32 images and labels, on the host: each side moves them itself."""
    rng = np.random.default_rng(0)
    images = rng.standard_normal((size, 3, 227, 227), dtype=np.float32)
    return images, rng.integers(0, 1000, size)


class Tinynet:
    def __init__(self, preset, images, labels, device):
        self.model, self.optimizer = tinynet_model(preset, device)
        self.images, self.labels = backend.to_device(images, device), backend.to_device(labels, device)

    def train_step(self):
        self.model.train()
        self.optimizer.zero_grad()
        loss = F.cross_entropy(self.model(Tensor(self.images)), self.labels)
        loss.backward()
        self.optimizer.step()
        return loss

    def infer(self):
        self.model.eval()
        with tinynet.no_grad():
            return backend.to_numpy(self.model(Tensor(self.images)).data)


class Torch:
    def __init__(self, model, images, labels, device):
        import torch

        self.torch, where = torch, "cuda" if device == "gpu" else "cpu"
        self.model, self.optimizer = torch_model(model, device)
        self.images, self.labels = torch.from_numpy(images).to(where), torch.from_numpy(labels).to(where)

    def train_step(self):
        self.model.train()
        self.optimizer.zero_grad()
        loss = self.torch.nn.functional.cross_entropy(self.model(self.images), self.labels)
        loss.backward()
        self.optimizer.step()
        return loss

    def infer(self):
        self.model.eval()
        with self.torch.no_grad():
            return self.model(self.images).cpu().numpy()
