"""Batch norm whose batch statistics are reduced over every rank.

``torch.nn.SyncBatchNorm`` refuses CPU tensors ("expected input tensor to be on GPU"), so
this small subclass of ``BatchNorm1d`` all-reduces ``(sum, sum of squares, count)`` with a
differentiable all-reduce (the gradient of a sum over ranks is the sum of the gradients).
It works with gloo (CPU) and NCCL alike, keeps ``BatchNorm1d``'s state-dict keys (exports
load into a plain ``BatchNorm1d``) and computes what ``BatchNorm1d`` computes in eval mode
or in a world of one.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn

from audio_core.distributed import is_distributed
from audio_core.distributed import world_size as world_size  # bsq task.py imports it


class _AllReduceSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tensor: Tensor) -> Tensor:
        out = tensor.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class SyncBatchNorm1d(nn.BatchNorm1d):
    """``BatchNorm1d`` over ``(batch, channels, length)`` with statistics from all ranks.

    Computes in fp32 whatever the dtypes of input, parameters and buffers (DeepSpeed's bf16
    mode casts parameters but may leave buffers in fp32) and returns the input's dtype.
    """

    def forward(self, x: Tensor) -> Tensor:
        shape = (1, x.shape[1], 1) if x.ndim == 3 else (1, x.shape[1])
        xf = x.float()
        if self.training or self.running_mean is None:
            mean, var = self._batch_stats(xf)
        else:
            mean, var = self.running_mean.float(), self.running_var.float()
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.float().view(shape) + self.bias.float().view(shape)
        return y.to(x.dtype)

    def _batch_stats(self, xf: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and biased variance over batch and length on every rank; updates the
        running statistics (unbiased variance, as ``BatchNorm1d``)."""
        dims = [0, 2] if xf.ndim == 3 else [0]
        c = xf.shape[1]
        count = torch.tensor([xf.numel() / c], device=xf.device, dtype=torch.float32)
        total = torch.cat([xf.sum(dims), xf.square().sum(dims), count])
        if is_distributed():
            total = _AllReduceSum.apply(total)
        n = total[-1]
        mean = total[:c] / n
        var = (total[c:2 * c] / n - mean.square()).clamp_min(0.0)
        if self.training and self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                            else self.momentum)
                unbiased = var * (n / (n - 1).clamp_min(1.0))
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        return mean, var


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``nn.BatchNorm1d`` in ``module`` by :class:`SyncBatchNorm1d` (same
    parameters and buffers); returns ``module``."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm1d) and not isinstance(child, SyncBatchNorm1d):
            sync = SyncBatchNorm1d(child.num_features, child.eps, child.momentum, child.affine,
                                   child.track_running_stats)
            sync.load_state_dict(child.state_dict())
            sync.to(next(iter(child.state_dict().values())).device)
            setattr(module, name, sync)
        else:
            convert_sync_batchnorm(child)
    return module
