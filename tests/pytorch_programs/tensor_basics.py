"""Tensor basics as a PyTorch tutorial teaches them: creation, dtypes, arithmetic,
comparisons, indexing, reductions, reshaping, in-place updates and NumPy interop.

`results()` returns what each line gives, as plain Python values; the test harness runs
this file with `torch` bound to PyTorch and to tinynet and compares the two.
"""

import numpy as np
import torch


def plain(value):
    """A tensor, a shape or a tuple of them as Python numbers and lists."""
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    return value


def results():
    torch.manual_seed(0)
    r = {}
    # creation and dtypes
    a = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    i = torch.arange(6)
    r["dtypes"] = [str(t.dtype) for t in (a, i, i * 0.5, a * 2, torch.zeros(2, dtype=torch.int64),
                                           torch.ones(2).long(), a.double(), a.to(torch.float64), i.float())]
    r["float32 stays float32"] = [str((a * np.float64(2)).dtype), str((a / 3).dtype), str((2.5 - a).dtype)]
    r["factories"] = plain([torch.zeros(2, 3).shape, torch.ones((2, 2)), torch.full((2,), 7.0),
                            torch.eye(2), torch.arange(1, 7, 2), torch.linspace(0, 1, 5),
                            torch.zeros_like(a), torch.ones_like(i)])
    r["random shapes"] = plain([torch.rand(3, 2).shape, torch.randn(4).shape, torch.randint(0, 10, (5,)).shape])
    r["in range"] = bool(((torch.rand(100) >= 0) & (torch.rand(100) < 1)).all())
    # sizes
    r["sizes"] = [plain(a.size()), a.size(0), a.size(-1), a.numel(), a.dim(), a.shape[1], len(a)]
    # arithmetic and math
    r["arithmetic"] = plain([a + 1, a * a, a / 2, a - a.mean(), 2 ** i, a @ a.T, a.pow(2)])
    r["math"] = plain([a.exp().log(), a.sqrt(), (-a).abs(), a.clamp(2, 5), a.clamp(min=3),
                       torch.sigmoid(torch.tensor([0.0])), torch.tanh(torch.tensor([0.0])), torch.relu(a - 3)])
    # comparisons
    pred, y = torch.tensor([1, 2, 3, 4]), torch.tensor([1, 0, 3, 0])
    r["comparisons"] = plain([pred == y, pred != y, pred > 2, pred <= 2, ~(pred == y), (pred > 1) & (pred < 4)])
    r["accuracy"] = (pred == y).float().mean().item()
    r["correct"] = (pred == y).sum().item()
    # reductions
    values, indices = a.max(dim=1)
    r["reductions"] = plain([a.sum(), a.sum(dim=0), a.sum(0, keepdim=True), a.mean(dim=1), values, indices,
                             a.min(), a.argmax(), a.argmax(dim=0), a.std(), a.var(dim=1), a.norm(),
                             a.sum(dim=(0, 1))])
    # reshaping
    r["shapes"] = plain([a.view(3, 2), a.reshape(-1), a.flatten(), a.permute(1, 0), a.transpose(0, 1),
                         a.unsqueeze(0).shape, a.unsqueeze(-1).shape, a.unsqueeze(0).squeeze(0).shape,
                         torch.cat([a, a], dim=0).shape, torch.stack([a, a], dim=1).shape,
                         torch.where(a > 3, a, torch.zeros_like(a))])
    # indexing
    r["indexing"] = plain([a[0], a[:, 1], a[1, 2], a[a > 2], a[[0, 1], [2, 0]], a[torch.tensor([1, 0])],
                           a[range(2), torch.tensor([0, 2])]])
    # in place
    b = a.clone()
    b += 1
    b[0, 0] = 100
    b.mul_(2)
    b[b > 10] = 0
    c = torch.empty(2, 3)
    c.fill_(3.0)
    c.zero_()
    r["in place"] = plain([b, c, a])
    # NumPy and Python
    r["numpy"] = [np.asarray(a).tolist(), a.numpy().dtype.name, torch.from_numpy(np.arange(3)).tolist(),
                  torch.tensor(np.float32(2.5)).item(), float(a[0, 0]), int(i[3]), a.tolist()]
    return r


def gradients():
    """Gradients through indexing, reductions and reshapes (a cross-entropy by hand)."""
    logits = torch.tensor([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3], [1.0, 1.0, 3.0]], requires_grad=True)
    targets = torch.tensor([0, 1, 2])
    logp = logits - logits.exp().sum(dim=1, keepdim=True).log()
    loss = -logp[range(3), targets].mean()
    loss.backward()
    return loss.item(), logits.grad.tolist()
