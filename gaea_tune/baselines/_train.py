"""Training a standalone network of one genotype from scratch (plain torch, Ray-free).

The NB201 recipe: SGD with Nesterov momentum 0.9, lr 0.1 annealed by a cosine over the planned
epochs, weight decay 5e-4, cross-entropy. The cosine runs over ``epochs`` (the most a trial may
train), so a trial paused after a few epochs and continued later follows the same schedule.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch
from torch import nn

CHECK_EVERY = 50  # batches between host-side finiteness checks of the loss on accelerators


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN/inf loss: the evaluation failed."""


def seeded_network(
    space: Any, genotype: Any, C: int, N: int, num_classes: int, seed: int
) -> nn.Module:
    """``space.build_network`` with initial weights drawn from ``seed`` (global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return space.build_network(genotype, C, N, num_classes)


class StandaloneTraining:
    """Network, optimiser, schedule and loaders of one genotype; one call per epoch."""

    def __init__(
        self,
        network: nn.Module,
        splits: Any,
        epochs: int,
        batch_size: int = 64,
        lr: float = 0.1,
        weight_decay: float = 5e-4,
        momentum: float = 0.9,
        nesterov: bool = True,
        seed: int = 0,
        device: torch.device | str = "cpu",
        label: str = "",
        grad_clip: float | None = None,
        cutout: int = 0,
        auxiliary_weight: float = 0.0,
        drop_path: float = 0.0,
        amp: bool = False,
        channels_last: bool = False,
    ) -> None:
        for name, value in (("epochs", epochs), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr!r}")
        if not weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        self.device = torch.device(device)
        self.label = label
        self.epochs = int(epochs)
        self.epoch = 0  # epochs completed
        self.amp = bool(amp)  # bfloat16 autocast on self.device
        self.channels_last = bool(channels_last)
        self.network = network.to(self.device)
        if self.channels_last:
            self.network = self.network.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.SGD(
            self.network.parameters(),
            lr=lr,
            momentum=momentum,
            nesterov=nesterov and momentum > 0,
            weight_decay=weight_decay,
        )
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, self.epochs)
        self.grad_clip = grad_clip
        self.auxiliary_weight = float(auxiliary_weight)
        self.drop_path = float(drop_path)
        if (self.auxiliary_weight or self.drop_path) and not hasattr(network, "forward_with_aux"):
            raise ValueError(
                "auxiliary_weight and drop_path need a network with an auxiliary head and "
                "drop-path (the DARTS space's evaluation network)"
            )
        self.train_loader = splits.loader(
            "train", batch_size, seed=seed, device=self.device, cutout=cutout
        )
        self.valid_loader = splits.loader("valid", max(batch_size, 256), device=self.device)
        self.loss_fn = nn.CrossEntropyLoss()

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def train_epoch(self) -> dict[str, float]:
        """One epoch over the training split; raises :class:`NonFiniteLossError` on NaN/inf."""
        if self.epoch >= self.epochs:
            raise ValueError(f"all {self.epochs} planned epochs are done")
        self.network.train()
        if self.drop_path:  # raised linearly over training, as quark0/darts cnn/train.py does
            self.network.drop_path_prob = self.drop_path * self.epoch / self.epochs
        # on an accelerator the step runs without host syncs: the loss and accuracy add up on
        # the device, and the finiteness of the loss is checked every CHECK_EVERY batches and
        # at the end of the epoch; on the CPU (where a sync costs nothing) after every batch,
        # before the optimiser steps on it
        check_every = 1 if self.device.type == "cpu" else CHECK_EVERY
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        finite: torch.Tensor | None = None
        first_unchecked, seen = 0, 0
        for batch, (x, y) in enumerate(self.train_loader):
            x = self._layout(x.to(self.device, non_blocking=True))
            y = y.to(self.device, non_blocking=True)
            with self._autocast():
                if self.auxiliary_weight:
                    logits, aux_logits = self.network.forward_with_aux(x)
                    loss = self.loss_fn(logits.float(), y)
                    if aux_logits is not None:
                        loss = loss + self.auxiliary_weight * self.loss_fn(aux_logits.float(), y)
                else:
                    logits = self.network(x)
                    loss = self.loss_fn(logits.float(), y)
            value = loss.detach()
            if check_every == 1:
                if not math.isfinite(float(value)):
                    self._non_finite(float(value), f"batch {batch}")
            else:
                ok = torch.isfinite(value)
                finite = ok if finite is None else finite & ok
                if (batch + 1) % check_every == 0:
                    if not bool(finite):
                        self._non_finite(None, f"batches {first_unchecked}-{batch}")
                    finite, first_unchecked = None, batch + 1
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.grad_clip:
                nn.utils.clip_grad_norm_(self.network.parameters(), self.grad_clip)
            self.optimizer.step()
            loss_sum += value.double() * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
            seen += len(y)
        if finite is not None and not bool(finite):
            self._non_finite(None, f"batches {first_unchecked}-{batch}")
        total_loss = float(loss_sum)
        self.scheduler.step()
        self.epoch += 1
        return {
            "train_loss": total_loss / max(seen, 1),
            "train_acc": 100.0 * int(correct) / max(seen, 1),
            "train_images": seen,
        }

    def _non_finite(self, value: float | None, where: str) -> None:
        shown = "" if value is None else f" {value}"
        raise NonFiniteLossError(
            f"non-finite training loss{shown} at epoch {self.epoch + 1}, {where} "
            f"of {self.label or 'the network'}: the evaluation failed"
        )

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Loss and accuracy (%) on the validation split."""
        self.network.eval()
        total_loss, correct, seen = 0.0, 0, 0
        for x, y in self.valid_loader:
            with self._autocast():
                logits = self.network(self._layout(x)).float()
            total_loss += float(self.loss_fn(logits, y)) * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
        if seen == 0:
            raise ValueError(
                f"cannot evaluate {self.label or 'the network'}: the validation split holds no "
                "images, and an accuracy over zero images is undefined (a dataset without a "
                "validation split, such as live 'cifar10', gives no search signal; use "
                "'cifar10-valid')"
            )
        return {
            "valid_loss": total_loss / seen,
            "valid_acc": 100.0 * correct / seen,
            "valid_images": seen,
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "network": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "train_loader": self.train_loader.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        self.network.load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.train_loader.load_state_dict(state["train_loader"])
