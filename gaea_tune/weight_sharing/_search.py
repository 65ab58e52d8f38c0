"""First-order weight-sharing search on a supernet (plain torch, no Ray).

Per training batch: one architecture step (gradient of the loss on an architecture batch:
under single-level ERM a batch of the training data drawn from its own loader, as GAEA does
(gaea_release cnn/train_search.py line 241 over the copy of the training set that
cnn/train_utils.py lines 231-246 build); under bilevel a batch of the held-out split), then
one SGD step of the shared weights (momentum 0.9, weight decay 3e-4, gradient norm clipped at 5,
cosine learning rate from ``lr`` to ``lr_min`` over ``lr_cosine_epochs``). No architecture
step runs in the first ``arch_warmup_epochs`` epochs (PC-DARTS train_search.py line 156;
gaea_release cnn/architect/architect_egdas.py line 102). Every option a method leaves ``None``
takes that method's reference default (:meth:`SearchOptions.resolve`).

RS-WS trains the shared weights on a uniformly sampled architecture per batch and, after every
epoch, ranks ``rsws_candidates`` random architectures, each by its supernet accuracy on
``rsws_candidate_batches`` batches of the validation split (one in NB201's RANDOM-NAS:
AutoDL-Projects exps/NAS-Bench-201-algos/RANDOM-NAS.py lines 107-131, 100 candidates by
scripts-search/NAS-Bench-201-algos/RANDOM-NAS.sh line 43); its genotype is the best candidate
of the latest ranking (RANDOM-NAS.py lines 320-326 rank once more after the last epoch).

All randomness (DARTS logit initialisation, Gumbel noise, RS-WS samples) comes from one CPU
``torch.Generator`` seeded with ``seed``; supernet initialisation uses a forked global RNG
seeded with ``seed``; loaders carry their own seeded positions. :meth:`SupernetSearch.state_dict`
holds everything needed to resume an interrupted search exactly at an epoch boundary.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from typing import Any

import torch
from torch.nn import functional as F

from gaea_tune.weight_sharing._arch_optim import gumbel_tau, row_entropy
from gaea_tune.weight_sharing._methods import ArchParameters, Method, get_method
from gaea_tune.weight_sharing._options import (
    GENOTYPE_FROM,
    SearchOptions,
    check_warmup,
    default_numerics,
)


def resolve_space(space: Any) -> Any:
    """A search space object from its name (``"nb201"`` / ``"darts"``) or the object itself."""
    if isinstance(space, str):
        from search_spaces import get_space

        return get_space(space)
    return space


def _train_with_valid(splits: Any) -> Any:
    """``splits`` whose train split also holds valid, when valid is a held-out part of the
    dataset's training set (``cifar10-valid``, ``cifar10-subset``); unchanged otherwise (the
    NB201 x-valid halves of CIFAR-100 / ImageNet16-120 come from the test set and stay out)."""
    import dataclasses

    from gaea_tune.datasets import DATASET_INFO

    info = DATASET_INFO.get(getattr(splits, "name", ""))
    if info is None or info.valid is None or info.valid.pool != "train" or not len(splits.valid):
        return splits
    pair = type(splits.train)
    merged = pair(
        torch.cat([splits.train.images, splits.valid.images]),
        torch.cat([splits.train.labels, splits.valid.labels]),
    )
    return dataclasses.replace(splits, train=merged)


class SupernetSearch:
    """One weight-sharing search: a supernet, its architecture parameters and optimisers.

    ``train_loader`` / ``valid_loader`` / ``arch_loader`` iterate ``(images, labels)`` batches and
    have ``state_dict()`` / ``load_state_dict()`` (see :class:`gaea_tune.data.BatchLoader`).
    ``valid_loader`` gives the supernet validation accuracy (the search signal); ``arch_loader``
    gives the architecture batches: from the held-out split for bilevel, from the training data
    in its own order for ERM (``erm_arch_batch="own"``, the default). A method with
    architecture weights needs it unless ERM runs with ``erm_arch_batch="shared"``.
    :attr:`settings` holds the options as they run (:meth:`SearchOptions.resolve`).
    """

    def __init__(
        self,
        space: Any,
        method: str | Method,
        options: SearchOptions,
        train_loader: Any,
        valid_loader: Any,
        arch_loader: Any | None = None,
        *,
        num_classes: int,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ) -> None:
        self.space = resolve_space(space)
        self.method = get_method(method) if isinstance(method, str) else method
        if not isinstance(options, SearchOptions):
            raise TypeError(f"options must be SearchOptions, got {type(options).__name__}")
        self.options = options
        space_name = getattr(self.space, "name", "")
        self.settings: dict[str, Any] = options.resolve(self.method, space_name)
        self.formulation: str = self.settings["formulation"]
        self.arch_warmup = int(self.settings["arch_warmup_epochs"] or 0)
        self._evaluated_images = 0  # images evaluated in the current epoch (throughput)
        if self.method.has_arch:
            check_warmup("search", self.method, options.arch_warmup_epochs, options.epochs)
            if arch_loader is None and self._needs_arch_loader():
                raise ValueError(
                    "the bilevel formulation needs an arch_loader over a held-out split"
                    if self.formulation == "bilevel"
                    else "ERM draws its architecture batches from their own loader over the "
                    "training data (erm_arch_batch='own', as GAEA); pass an arch_loader or set "
                    "erm_arch_batch='shared'"
                )
        self.train_loader, self.valid_loader, self.arch_loader = (
            train_loader, valid_loader, arch_loader,
        )  # fmt: skip
        self.device = torch.device(device)
        self.seed = int(seed)
        exclude_none = bool(self.settings["exclude_none"])
        self.exclude_none = exclude_none
        self.ops: tuple[str, ...] = tuple(self.space.candidate_ops(exclude_none))
        self.shapes: dict[str, tuple[int, int]] = dict(self.space.arch_shapes(exclude_none))
        self.cell_types = tuple(self.shapes)
        self.partial_k = 1
        if self.method.partial:
            self.partial_k = int(self.settings["partial_k"])
        cuda = self.device.type == "cuda"
        auto = default_numerics(self.device.type, self.space)
        self.amp = auto["amp"] if options.amp is None else options.amp
        self.amp_dtype = torch.bfloat16
        if cuda and self.amp and not torch.cuda.is_bf16_supported():
            self.amp_dtype = torch.float16
        self.channels_last = (
            auto["channels_last"] if options.channels_last is None else options.channels_last
        )
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=cuda and self.amp and self.amp_dtype == torch.float16
        )

        self.generator = torch.Generator().manual_seed(self.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = self.space.build_supernet(
                options.C, options.N, num_classes, exclude_none, self.partial_k
            )
        memory_format = torch.channels_last if self.channels_last else torch.preserve_format
        self.model = model.to(self.device, memory_format=memory_format)
        self.arch: ArchParameters | None = None
        self.arch_opt: torch.optim.Optimizer | None = None
        if self.method.has_arch:
            groups = self.space.edge_groups() if self.method.edge_betas else None
            self.arch = ArchParameters(
                self.method, self.shapes, groups, self.generator, self.device
            )
            self.arch_opt = self.arch.make_optimizer(
                self.settings["arch_lr"], self.settings["arch_weight_decay"]
            )
        self.weight_opt = torch.optim.SGD(
            self.model.parameters(),
            lr=options.lr,
            momentum=options.momentum,
            weight_decay=options.weight_decay,
        )
        # the weight lr of 0-based epoch e is lr_min + (lr - lr_min) * (1 + cos(pi * e / T)) / 2
        # with T = lr_cosine_epochs: GAEA's CosinePowerAnnealing at power 1 (gaea_release
        # cnn/lr_schedulers.py lines 94-128) and PC-DARTS's / DARTS's CosineAnnealingLR.
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.weight_opt,
            T_max=self.settings["lr_cosine_epochs"],
            eta_min=self.settings["lr_min"],
        )
        self.epoch = 0
        self._arch_iter: Iterator[Any] | None = None
        self._mean: dict[str, torch.Tensor] | None = None
        self._mean_count = 0
        self._rsws_best: dict[str, Any] | None = None
        self._best_valid: dict[str, Any] | None = None
        self._rank_iter: Iterator[Any] | None = None
        self._finite: torch.Tensor | None = None
        # columns RS-WS samples from: every candidate op on NB201, as RANDOM-NAS draws from the
        # whole op list (AutoDL-Projects xautodl/models/cell_searchs/search_model_random.py line
        # 81); never ``none`` on DARTS, whose genotypes cannot hold it
        self._sample_columns = [
            k for k, op in enumerate(self.ops) if op != "none" or space_name == "nb201"
        ]

    def _needs_arch_loader(self) -> bool:
        if self.formulation == "bilevel":
            return True
        return self.settings["erm_arch_batch"] == "own" and not self.options.erm_joint

    # ------------------------------------------------------------------ construction helpers

    @classmethod
    def from_splits(
        cls,
        space: Any,
        method: str | Method,
        options: SearchOptions,
        splits: Any,
        *,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ) -> SupernetSearch:
        """A search over :class:`gaea_tune.data.ImageSplits`: train for the weights, valid for
        the search signal; the architecture loader runs over valid for bilevel and, for ERM,
        over train again with its own seed (``seed + 1``), so the architecture step draws its own
        batches of the training data in an order of its own (GAEA's single level: gaea_release
        cnn/train_utils.py lines 231-246 load a copy of the training set in a second shuffled
        loader, and cnn/train_search.py line 241 takes a fresh random batch of it per step)."""
        from gaea_tune.datasets import search_signal_error

        if len(splits.valid) == 0:
            raise ValueError(
                search_signal_error(splits.name)
                or f"dataset {splits.name!r} has an empty valid split; a supernet search needs one"
            )
        loader_device = device
        m = get_method(method) if isinstance(method, str) else method
        settings = options.resolve(m, getattr(resolve_space(space), "name", ""))
        if settings.get("erm_data") == "train+valid":
            splits = _train_with_valid(splits)
        train = splits.loader("train", options.batch_size, seed=seed, device=loader_device)
        valid = splits.loader(
            "valid", options.eval_batch_size, train=False, seed=seed, device=loader_device
        )
        arch = None
        if m.has_arch and settings["formulation"] == "bilevel":
            arch = splits.loader(
                "valid", options.batch_size, train=True, seed=seed + 1, device=loader_device
            )
        elif m.has_arch and settings["erm_arch_batch"] == "own" and not options.erm_joint:
            arch = splits.loader(
                "train", options.batch_size, train=True, seed=seed + 1, device=loader_device
            )
        return cls(
            space, method, options, train, valid, arch,
            num_classes=splits.num_classes, device=device, seed=seed,
        )  # fmt: skip

    # ------------------------------------------------------------------ steps

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def _prep(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(self.device, non_blocking=True)

    def _loss(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        weights: dict[str, torch.Tensor],
        edges: dict[str, torch.Tensor] | None,
        mode: str,
        what: str,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        with self._autocast():
            logits = self.model(x, weights, mode, edges)
        loss = F.cross_entropy(logits.float(), y)
        if self.device.type == "cpu":
            if not torch.isfinite(loss):
                self._diverged(what, float(loss.detach()))
        else:  # no host sync per step on accelerators: checked every few steps by run_epoch
            finite = torch.isfinite(loss.detach())
            self._finite = finite if self._finite is None else self._finite & finite
        return logits, loss

    def _diverged(self, what: str, value: float | None = None) -> None:
        shown = "" if value is None else f" {value!r}"
        raise FloatingPointError(
            f"{self.method.name} search diverged: non-finite {what} loss{shown} in epoch "
            f"{self.epoch + 1} (lr={self.options.lr}, arch_lr={self.settings['arch_lr']}); "
            "lower the learning rates or disable mixed precision"
        )

    def _check_finite(self) -> None:
        if self._finite is not None and not bool(self._finite):
            self._diverged("training or architecture")
        self._finite = None

    def _tau(self) -> float | None:
        if not self.method.gumbel:
            return None
        o = self.options
        # the warm-up shifts the schedule only where the reference code does (GAEA-GDAS)
        shift = self.arch_warmup if self.method.is_gaea else 0
        return gumbel_tau(self.epoch, o.epochs, o.tau_max, o.tau_min, warmup=shift)

    def arch_active(self) -> bool:
        """Whether the current epoch takes architecture steps (past the warm-up)."""
        return self.arch is not None and self.epoch >= self.arch_warmup

    def _regulariser(self) -> torch.Tensor | None:
        reg = self.settings["entropic_reg"]
        if not reg or self.arch is None:
            return None
        return reg * self.arch.entropic_penalty()

    def _next_arch_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        for _ in range(2):
            if self._arch_iter is None:
                self._arch_iter = iter(self.arch_loader)
            try:
                return next(self._arch_iter)
            except StopIteration:
                self._arch_iter = None
        raise ValueError("the architecture loader yields no batches")

    def _arch_step(self, x: torch.Tensor, y: torch.Tensor, tau: float | None) -> None:
        assert self.arch is not None and self.arch_opt is not None
        weights, edges = self.arch.mixing(tau, self.generator)
        _, loss = self._loss(x, y, weights, edges, self.method.mode, "architecture")
        penalty = self._regulariser()
        if penalty is not None:
            loss = loss + penalty
        params = self.arch.parameters()
        # only the architecture gradients: autograd skips the conv weight gradients
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        for p, g in zip(params, grads):
            p.grad = torch.zeros_like(p) if g is None else g
        self.arch_opt.step()

    def _sample_single(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None]:
        """A uniformly random architecture as one-hot rows (RS-WS); on spaces whose nodes keep
        2 inputs (DARTS), an edge mask picks 2 random incoming edges per node."""
        cols = torch.tensor(self._sample_columns)
        weights = {}
        for cell, (num_edges, num_ops) in self.shapes.items():
            pick = cols[torch.randint(len(cols), (num_edges,), generator=self.generator)]
            weights[cell] = F.one_hot(pick, num_ops).float().to(self.device)
        edges = None
        if getattr(self.space, "name", "") == "darts":
            edges = {}
            groups = self.space.edge_groups()
            for cell, (num_edges, _) in self.shapes.items():
                mask = torch.zeros(num_edges)
                for group in groups[cell]:
                    keep = torch.randperm(len(group), generator=self.generator)[:2]
                    mask[torch.tensor(group)[keep]] = 1.0
                edges[cell] = mask.to(self.device)
        return weights, edges

    def _train_weights(
        self, x: torch.Tensor, y: torch.Tensor, tau: float | None, joint: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        self.weight_opt.zero_grad(set_to_none=True)
        if self.arch is None:
            weights, edges = self._sample_single()
        elif joint:
            assert self.arch_opt is not None
            self.arch_opt.zero_grad(set_to_none=True)
            weights, edges = self.arch.mixing(tau, self.generator)
        else:
            with torch.no_grad():
                weights, edges = self.arch.mixing(tau, self.generator)
        logits, loss = self._loss(x, y, weights, edges, self.method.mode, "training")
        penalty = self._regulariser() if joint else None
        self.scaler.scale(loss if penalty is None else loss + penalty).backward()
        if joint:
            assert self.arch_opt is not None and self.arch is not None
            if self.scaler.is_enabled():  # fp16 loss scaling: unscale the architecture grads
                inv = 1.0 / self.scaler.get_scale()
                for p in self.arch.parameters():
                    if p.grad is not None:
                        p.grad.mul_(inv)
            self.arch_opt.step()
        self.scaler.unscale_(self.weight_opt)
        if self.options.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.options.grad_clip)
        self.scaler.step(self.weight_opt)
        self.scaler.update()
        return logits.detach(), loss.detach()

    def train_step(
        self, x: torch.Tensor, y: torch.Tensor, tau: float | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One search step on a training batch: architecture step (past the warm-up), then
        weight step."""
        x, y = self._prep(x, y)
        joint = False
        if self.arch_active():
            if self.formulation == "erm" and self.options.erm_joint:
                joint = True
            elif self.formulation == "erm" and self.settings["erm_arch_batch"] == "shared":
                self._arch_step(x, y, tau)
            else:  # bilevel: the held-out split; ERM: the training data in its own order
                xa, ya = self._prep(*self._next_arch_batch())
                self._arch_step(xa, ya, tau)
        logits, loss = self._train_weights(x, y, tau, joint)
        if self.arch is not None:
            self._accumulate_mean()
        return logits, loss

    def _accumulate_mean(self) -> None:
        probs = self._eval_probs()
        if self._mean is None:
            self._mean = {c: torch.zeros_like(p) for c, p in probs.items()}
            self._mean_count = 0
        self._mean_count += 1
        for c, p in probs.items():
            self._mean[c] += (p - self._mean[c]) / self._mean_count

    # ------------------------------------------------------------------ epochs

    def run_epoch(self) -> dict[str, Any]:
        """Train one epoch, then evaluate; returns the epoch's metrics."""
        self._evaluated_images = 0
        if self.epoch >= self.options.epochs:
            raise RuntimeError(f"the search already ran its {self.options.epochs} epochs")
        start = time.perf_counter()
        self.model.train()
        tau = self._tau()
        lr = self.weight_opt.param_groups[0]["lr"]
        self._mean, self._mean_count = None, 0
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        seen = 0
        for step, (x, y) in enumerate(self.train_loader, start=1):
            logits, loss = self.train_step(x, y, tau)
            if step % 50 == 0:
                self._check_finite()
            y = y.to(self.device)
            loss_sum += loss.double() * y.shape[0]
            correct += (logits.argmax(dim=1) == y).sum()
            seen += int(y.shape[0])
        if seen == 0:
            raise ValueError("the training loader yielded no batches")
        arch_images = seen if self.arch_active() else 0
        self._check_finite()
        self.scheduler.step()
        self.epoch += 1
        signal = None
        if self.arch is None:
            valid_acc = self._rank_random_candidates()
        else:
            weights, edges = self._eval_mixing()
            valid_acc = self.evaluate(weights, edges)
            signal = self._track_best_valid(valid_acc)
        metrics: dict[str, Any] = {
            "epoch": self.epoch,
            "train_loss": float(loss_sum) / seen,
            "train_acc": 100.0 * float(correct) / seen,
            "valid_acc": valid_acc,
            "search_signal": valid_acc if signal is None else signal,
            "entropy": self.entropy(),
            "genotype": str(self.genotype()),
            "arch_weights": self.arch_weights(),
            "lr": float(lr),
            "epoch_seconds": time.perf_counter() - start,
            # images through the network this epoch (weight steps, architecture steps and the
            # evaluation), for throughput per charged device-second
            "images": seen + arch_images + self._evaluated_images,
        }
        if tau is not None:
            metrics["tau"] = tau
        return metrics

    @torch.no_grad()
    def evaluate(
        self, weights: dict[str, torch.Tensor], edges: dict[str, torch.Tensor] | None = None
    ) -> float:
        """Supernet accuracy (%) on the validation loader with fixed mixing weights."""
        return self._accuracy(
            weights, edges, iter(self.valid_loader),
            "cannot evaluate the supernet: the validation loader yielded no images",
        )  # fmt: skip

    def _accuracy(
        self,
        weights: dict[str, torch.Tensor],
        edges: dict[str, torch.Tensor] | None,
        batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
        empty: str,
    ) -> float:
        """Supernet accuracy (%) over ``batches``; ``empty`` starts the error for no images."""
        self.model.eval()
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        seen = 0
        try:
            for x, y in batches:
                x, y = self._prep(x, y)
                with self._autocast():
                    logits = self.model(x, weights, self.method.mode, edges)
                correct += (logits.argmax(dim=1) == y).sum()
                seen += int(y.shape[0])
        finally:
            self.model.train()
        if seen == 0:
            raise ValueError(f"{empty}, and an accuracy over zero images is undefined")
        self._evaluated_images += seen
        return 100.0 * float(correct) / seen

    def _track_best_valid(self, valid_acc: float) -> float | None:
        """Keep the genotype of the epoch with the best supernet validation accuracy so far
        (strictly better replaces, as gaea_release cnn/train_search.py lines 168-170 and
        193-195); returns that accuracy when it is the incumbent's signal."""
        if self._best_valid is None or valid_acc > self._best_valid["acc"]:
            self._best_valid = {
                "acc": float(valid_acc),
                "epoch": self.epoch,
                "weights": self._genotype_weights("current"),
            }
        if self.settings["genotype_from"] != "best_valid":
            return None
        return float(self._best_valid["acc"])

    def _next_rank_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        for _ in range(2):
            if self._rank_iter is None:
                self._rank_iter = iter(self.valid_loader)
            try:
                return next(self._rank_iter)
            except StopIteration:
                self._rank_iter = None
        raise ValueError("the validation loader yields no batches")

    @torch.no_grad()
    def _candidate_accuracy(
        self, weights: dict[str, torch.Tensor], edges: dict[str, torch.Tensor] | None
    ) -> float:
        """Supernet accuracy (%) of one RS-WS candidate on the next ``rsws_candidate_batches``
        validation batches (the whole split when 0)."""
        batches = self.options.rsws_candidate_batches
        if batches == 0:
            return self.evaluate(weights, edges)
        return self._accuracy(
            weights, edges, (self._next_rank_batch() for _ in range(batches)),
            "cannot score an RS-WS candidate: its validation batches held no images",
        )  # fmt: skip

    def _rank_random_candidates(self) -> float:
        """Score ``rsws_candidates`` random architectures, each on its own validation batches
        (NB201's RANDOM-NAS: each of 100 candidates on the next batch of the validation
        loader, AutoDL-Projects exps/NAS-Bench-201-algos/RANDOM-NAS.py lines 112-131), and keep
        the first best. The batches follow the validation loader's own order, continuing
        across candidates and epochs."""
        best: dict[str, Any] | None = None
        for _ in range(self.options.rsws_candidates):
            weights, edges = self._sample_single()
            acc = self._candidate_accuracy(weights, edges)
            if best is None or acc > best["acc"]:
                best = {"acc": acc, "weights": weights, "edges": edges}
        assert best is not None
        self._rsws_best = {
            "acc": best["acc"],
            "weights": {c: t.cpu() for c, t in best["weights"].items()},
            "edges": None
            if best["edges"] is None
            else {c: t.cpu() for c, t in best["edges"].items()},
        }
        return float(best["acc"])

    # ------------------------------------------------------------------ views

    @torch.no_grad()
    def _eval_probs(self) -> dict[str, torch.Tensor]:
        """Op distributions (detached, float32) per cell type."""
        if self.arch is None:
            k = len(self._sample_columns)
            return {
                c: torch.tensor(
                    [1.0 / k if j in self._sample_columns else 0.0 for j in range(n)]
                ).repeat(e, 1)
                for c, (e, n) in self.shapes.items()
            }
        return {c: p.detach().float().clone() for c, p in self.arch.probs().items()}

    @torch.no_grad()
    def _eval_mixing(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None]:
        assert self.arch is not None
        probs = self._eval_probs()
        edges = self.arch.edge_weights()
        edges = None if edges is None else {c: t.detach().float() for c, t in edges.items()}
        if self.method.mode == "hard":  # the argmax op of every edge, unscaled
            probs = {c: F.one_hot(p.argmax(dim=1), p.shape[1]).float() for c, p in probs.items()}
        return probs, edges

    def entropy(self) -> float:
        """Mean per-edge entropy (nats) of the op distributions."""
        values = torch.cat([row_entropy(p) for p in self._eval_probs().values()])
        return float(values.mean())

    def arch_weights(self) -> list[list[list[float]]]:
        """Mixing weights as nested lists: one ``[E][K]`` matrix per cell type, in
        :attr:`cell_types` order, columns in :attr:`ops` order."""
        probs = self._eval_probs()
        return [probs[c].cpu().double().tolist() for c in self.cell_types]

    def edge_weights(self) -> list[list[float]] | None:
        """PC-DARTS edge weights per cell type (``[E]`` each), or ``None``."""
        if self.arch is None or not self.arch.betas:
            return None
        edges = self.arch.edge_weights()
        assert edges is not None
        return [edges[c].detach().cpu().double().tolist() for c in self.cell_types]

    @torch.no_grad()
    def _genotype_weights(self, source: str) -> dict[str, torch.Tensor]:
        """The CPU weights :meth:`genotype` discretises (op weights x PC-DARTS edge weights)."""
        assert self.arch is not None
        if source == "best_valid" and self._best_valid is not None:
            return dict(self._best_valid["weights"])
        use_mean = source == "epoch_mean" and self._mean is not None
        weights = {c: t.cpu() for c, t in (self._mean if use_mean else self._eval_probs()).items()}
        edges = self.arch.edge_weights()
        if edges is not None:  # PC-DARTS parses alpha x beta
            weights = {c: w * edges[c].detach().float().cpu()[:, None] for c, w in weights.items()}
        return weights

    @torch.no_grad()
    def genotype(self, source: str | None = None) -> Any:
        """The discrete architecture the search currently points at; ``source`` overrides
        the resolved ``genotype_from``: ``"current"`` (argmax of the weights now),
        ``"epoch_mean"`` (of the epoch's mean weights) or ``"best_valid"`` (the weights at the
        end of the epoch with the best supernet validation accuracy; the current ones before
        the first epoch). RS-WS always returns the best candidate of its latest ranking."""
        source = self.settings["genotype_from"] if source is None else source
        if source not in GENOTYPE_FROM:
            raise ValueError(f"source must be one of {', '.join(GENOTYPE_FROM)}, got {source!r}")
        if self.arch is None:
            if self._rsws_best is None:
                raise RuntimeError("RS-WS has no ranked candidate before its first epoch")
            weights = dict(self._rsws_best["weights"])
            edges = self._rsws_best["edges"]
            if edges is not None:  # DARTS: the candidate's two inputs per node
                weights = {c: w * edges[c].float()[:, None] for c, w in weights.items()}
        else:
            weights = self._genotype_weights(source)
        return self.space.discretize(weights, self.ops)

    # ------------------------------------------------------------------ state

    def _loaders(self) -> dict[str, Any]:
        loaders = {"train": self.train_loader, "valid": self.valid_loader}
        if self.arch_loader is not None:
            loaders["arch"] = self.arch_loader
        return loaders

    def set_epochs(self, epochs: int) -> None:
        """Change the planned epoch count mid-search (a budget-derived length): the weight-lr
        cosine is re-planned over the new length from where it stands (its period follows the
        same rule as at the start: the run's epochs, or GAEA's fixed period when longer), and
        the Gumbel temperature schedule follows the new length.

        Raises ``ValueError`` for fewer epochs than already ran.
        """
        import dataclasses

        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < max(1, self.epoch):
            raise ValueError(
                f"epochs must be an int >= the {self.epoch} epochs already run, got {epochs!r}"
            )
        self.options = dataclasses.replace(self.options, epochs=epochs)
        self.settings = self.options.resolve(self.method, getattr(self.space, "name", ""))
        period = int(self.settings["lr_cosine_epochs"])
        self.scheduler.T_max = period
        low = float(self.scheduler.eta_min)
        for group in self.weight_opt.param_groups:  # the closed form at the current epoch
            high = float(group["initial_lr"])
            group["lr"] = low + (high - low) * (1 + math.cos(math.pi * self.epoch / period)) / 2

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume this search exactly (plain tensors / Python values, so
        ``torch.load(..., weights_only=True)`` reads it back)."""
        return {
            "space": getattr(self.space, "name", ""),
            "method": self.method.name,
            "epoch": self.epoch,
            "epochs": self.options.epochs,
            "model": self.model.state_dict(),
            "arch": None if self.arch is None else self.arch.state_dict(),
            "arch_opt": None if self.arch_opt is None else self.arch_opt.state_dict(),
            "weight_opt": self.weight_opt.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "generator": self.generator.get_state(),
            "loaders": {k: dict(v.state_dict()) for k, v in self._loaders().items()},
            "mean": None if self._mean is None else {c: t.cpu() for c, t in self._mean.items()},
            "mean_count": self._mean_count,
            "rsws_best": self._rsws_best,
            "best_valid": self._best_valid,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict` (same space, method and options)."""
        space = getattr(self.space, "name", "")
        if state["method"] != self.method.name or state["space"] != space:
            raise ValueError(
                f"checkpoint is for method {state['method']!r} on {state['space']!r}, this search "
                f"is {self.method.name!r} on {space!r}"
            )
        self.epoch = int(state["epoch"])
        if int(state.get("epochs", self.options.epochs)) != self.options.epochs:
            self.set_epochs(int(state["epochs"]))  # a budget-derived epoch count
        self.model.load_state_dict(state["model"])
        if self.arch is not None:
            self.arch.load_state_dict(state["arch"])
            assert self.arch_opt is not None
            self.arch_opt.load_state_dict(state["arch_opt"])
        self.weight_opt.load_state_dict(state["weight_opt"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.generator.set_state(state["generator"])
        for name, loader in self._loaders().items():
            loader.load_state_dict(state["loaders"][name])
        self._arch_iter = None
        mean = state.get("mean")
        self._mean = None if mean is None else {c: t.to(self.device) for c, t in mean.items()}
        self._mean_count = int(state.get("mean_count", 0))
        self._rsws_best = state.get("rsws_best")
        self._best_valid = state.get("best_valid")
        self._rank_iter = None
