"""A two-layer perceptron on Fashion-MNIST, written as for PyTorch.

The test harness runs this file twice, with `torch` bound to PyTorch and to tinynet, and
gives it TRAIN = (images, labels): uint8 images (N, 1, 28, 28) and int labels (N,).
"""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class MLP(nn.Module):
    def __init__(self, hidden=128):
        super().__init__()
        self.fc1 = nn.Linear(28 * 28, hidden)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x):
        x = x.view(x.size(0), -1)
        return self.fc2(F.relu(self.fc1(x)))


def as_tensors(images, labels):
    x = torch.from_numpy(images.astype(np.float32) / 255.0)
    y = torch.tensor(labels, dtype=torch.long)
    return (x - 0.2860) / 0.3530, y


def train(model, images, labels, epochs=2, batch_size=100, lr=0.1):
    """Plain minibatch SGD with momentum; returns the loss of every step."""
    x, y = as_tensors(images, labels)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    losses = []
    model.train()
    for _ in range(epochs):
        for start in range(0, x.shape[0], batch_size):
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            optimizer.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return losses


def accuracy(model, images, labels):
    x, y = as_tensors(images, labels)
    model.eval()
    with torch.no_grad():
        predictions = model(x).argmax(dim=1)
    return (predictions == y).float().mean().item()
