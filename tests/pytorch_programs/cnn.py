"""A small convolutional network on Fashion-MNIST, written as for PyTorch: Sequential
layers, a Dataset and DataLoader, Adam with a learning rate changed through param_groups,
dropout, and a saved and reloaded state dict.

The test harness runs this file with `torch` bound to PyTorch and to tinynet.
"""

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


def build_model(dropout=0.25):
    return nn.Sequential(
        nn.Conv2d(1, 16, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(32 * 7 * 7, 10),
    )


def make_loader(images, labels, batch_size=64, shuffle=True):
    x = torch.tensor(images).float() / 255
    y = torch.tensor(labels).long()
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle)


def train(model, loader, epochs=2, lr=2e-3):
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        model.train()
        for images, labels in loader:
            optimizer.zero_grad()
            loss = criterion(model(images), labels)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        for group in optimizer.param_groups:  # halve the rate after each epoch
            group["lr"] *= 0.5
    return losses


def evaluate(model, loader):
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for images, labels in loader:
            predicted = model(images).argmax(1)
            correct += (predicted == labels).sum().item()
            total += labels.size(0)
    return correct / total


def save_and_reload(model, path):
    torch.save(model.state_dict(), path)
    copy = build_model()
    copy.load_state_dict(torch.load(path))
    return copy


def predictions(model, images):
    model.eval()
    with torch.no_grad():
        return np.asarray(model(torch.tensor(images).float() / 255).argmax(dim=1))
