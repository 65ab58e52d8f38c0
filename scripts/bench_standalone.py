"""Throughput and peak memory of standalone training steps on synthetic data.

The network is the standalone NB201 network of the best CIFAR-10 cell (the arch string with the
highest ``cifar10_test_200`` in the bundled table), built as NB201 trains it: C=16, N=5,
10 classes (1,073,466 parameters). A step is one batch of
:meth:`gaea_tune.baselines._train.StandaloneTraining.train_epoch` (forward, cross-entropy,
the host-side finiteness check of the loss, backward, SGD with Nesterov momentum), on random
32x32 images prepared on the device up front, so the timing covers the training step only.

Settings: batch 64 and batch 256 (``--quick``: C=8, N=1, batch 16, a few steps). Numerics
(``--variants``): ``fp32`` (float32, NCHW), ``bf16-cl`` (bfloat16 autocast, channels_last),
also ``bf16`` and ``fp32-cl``; ``comparison`` is the comparison-level numerics by default,
``bf16-cl`` on CUDA and ``fp32-cl`` on CPU (NB201 trains faster in channels_last there;
``gaea_tune.weight_sharing.default_numerics``). Default: ``fp32,comparison``. With
``--reference-dir``, the reference's fp32 NCHW is set against each of our fp32 variants.

Every measurement runs in a fresh subprocess (this script in worker mode), and the repeats are
interleaved across settings (A B A B A B, not A A A B B B), so drift of the machine spreads over
all settings; the table gives the median and the spread (min-max) of the repeats. Peak memory:
on CUDA ``torch.cuda.max_memory_allocated`` over the timed steps; on CPU the process's peak
resident set (``getrusage`` maxrss) minus its resident set before the network was built.

``--reference-dir PATH`` (a folder holding a checkout of D-X-Y/AutoDL-Projects; nothing of
theirs is copied into this repository) also trains AutoDL's ``TinyNetwork`` of the same cell with
their NB201 training loop (xautodl/procedures/funcs_nasbench.py ``procedure``, the optimiser and
schedule of ``get_optim_scheduler`` with the 200-epoch NB201 hyper-parameters), fp32 NCHW, on the
same batches, interleaved with ours, and prints ours/theirs for images/s, img/cpu-s (images per
second of the process's CPU time) and peak memory.

    python scripts/bench_standalone.py                         # CPU, 2 threads, 3 repeats
    python scripts/bench_standalone.py --reference-dir /tmp/refs       # vs AutoDL's code
    python scripts/bench_standalone.py --device cuda --steps 100 --json standalone.json
    python scripts/bench_standalone.py --quick --repeats 1     # smoke test, seconds
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from bench_supernet import (
    _report,
    add_common_arguments,
    current_rss_bytes,
    finish_arguments,
    interleaved,
    prime_torch,
    print_ratios,
    print_table,
    ratios,
    run_worker,
    selected_settings,
    selected_variants,
    summarise,
    write_figures,
)

SETTINGS = {
    "b64": {"C": 16, "N": 5, "batch_size": 64, "resolution": 32},
    "b256": {"C": 16, "N": 5, "batch_size": 256, "resolution": 32},
    "quick": {"C": 8, "N": 1, "batch_size": 16, "resolution": 32},
}
DEFAULT_SETTINGS = "b64,b256"
# variant -> (bfloat16 autocast, channels_last)
VARIANTS = {
    "fp32": (False, False),
    "fp32-cl": (False, True),
    "bf16": (True, False),
    "bf16-cl": (True, True),
}
VARIANT_LABELS = {
    "fp32": "fp32 NCHW",
    "fp32-cl": "fp32 channels_last",
    "bf16": "bf16 autocast NCHW",
    "bf16-cl": "bf16 autocast channels_last",
}
NUM_CLASSES = 10
IMPL_LABELS = {"ours": "gaea-tune", "autodl": "AutoDL TinyNetwork (ref)"}


def best_cifar10_arch() -> str:
    """The NB201 cell with the highest ``cifar10_test_200`` in the bundled table."""
    from gaea_tune.nb201_table import load_table

    genotype, _ = load_table().best("cifar10_test_200")
    return str(genotype)


class _PreparedBatches:
    """Stand-in for the data splits StandaloneTraining asks for: its loaders are prepared
    batches (random images already on the device), so the timing covers training steps only."""

    def __init__(self, batches: list[tuple[Any, Any]]) -> None:
        self.batches = batches

    def loader(self, which: str, batch_size: int, **_: Any) -> list[tuple[Any, Any]]:
        return list(self.batches)


def _worker(args: argparse.Namespace) -> None:
    import gc

    import torch

    from gaea_tune.baselines._train import StandaloneTraining, seeded_network
    from search_spaces import get_space

    if args.threads:
        torch.set_num_threads(args.threads)
    setting = SETTINGS[args.setting]
    amp, channels_last = VARIANTS[args.variant]
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True  # as the trainables set it on CUDA
    space = get_space("nb201")
    prime_torch(device)
    gc.collect()
    rss_before = current_rss_bytes()  # everything below (network, data, training) is measured

    bs, res = setting["batch_size"], setting["resolution"]
    network = seeded_network(space, args.arch, setting["C"], setting["N"], NUM_CLASSES, seed=0)
    params = sum(p.numel() for p in network.parameters())
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    network = network.to(device, memory_format=memory_format)
    batches = _synthetic_batches(bs, res, device, memory_format)
    training = StandaloneTraining(
        network, _PreparedBatches(batches), epochs=2, batch_size=bs, device=device,
        label="benchmark network", amp=amp, channels_last=channels_last,
    )  # fmt: skip

    def epoch(steps: int) -> None:
        training.train_loader = [batches[i % len(batches)] for i in range(steps)]
        training.train_epoch()
        if cuda:
            torch.cuda.synchronize(device)

    _measure(args, epoch, bs, device, rss_before, params)


def _measure(
    args: argparse.Namespace, epoch: Any, bs: int, device: Any, rss_before: int, params: int
) -> None:
    """Warm up, then time ``args.steps`` steps of ``epoch`` and print the result line."""
    import torch

    epoch(max(1, args.warmup))  # first epoch: warm-up (cuDNN autotuning, allocator)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    epoch(args.steps)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    _report(args, bs, seconds, cpu_seconds, rss_before, device, params=params)


def _synthetic_batches(bs: int, res: int, device: Any, memory_format: Any) -> list[tuple[Any, Any]]:
    """Four random batches (normal images, labels), already on ``device`` in ``memory_format``."""
    import torch

    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(4):
        x = torch.randn(bs, 3, res, res, generator=g).to(device, memory_format=memory_format)
        y = torch.randint(0, NUM_CLASSES, (bs,), generator=g).to(device)
        batches.append((x, y))
    return batches


def _autodl_worker(args: argparse.Namespace) -> None:
    """AutoDL's TinyNetwork of the same cell trained by their NB201 training loop
    (D-X-Y/AutoDL-Projects xautodl/procedures/funcs_nasbench.py ``procedure``: SGD with
    Nesterov momentum, lr 0.1 cosine, weight decay 5e-4, the 200-epoch hyper-parameters of
    configs/nas-benchmark/hyper-opts/200E.config), from a checkout outside this repository:
    nothing of theirs is copied here; the worker puts their folder on sys.path and maps their
    hard-coded CUDA calls to the benchmark's device (a no-op on CUDA)."""
    import gc

    import torch
    from bench_supernet import _reference_shims, find_reference

    if args.threads:
        torch.set_num_threads(args.threads)
    setting = SETTINGS[args.setting]
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.cuda.set_device(device)
    ref = find_reference(args.reference_dir)
    if "autodl" not in ref:
        raise SystemExit(f"--reference-dir {args.reference_dir}: no AutoDL-Projects (xautodl/)")
    sys.path.insert(0, ref["autodl"])
    _reference_shims(device)
    from xautodl.config_utils import dict2config
    from xautodl.models.cell_infers.tiny_network import TinyNetwork
    from xautodl.models.cell_searchs.genotypes import Structure
    from xautodl.procedures import get_optim_scheduler
    from xautodl.procedures.funcs_nasbench import procedure

    prime_torch(device)
    gc.collect()
    rss_before = current_rss_bytes()
    bs, res = setting["batch_size"], setting["resolution"]
    torch.manual_seed(0)
    network = TinyNetwork(
        setting["C"], setting["N"], Structure.str2structure(args.arch), NUM_CLASSES
    )
    network = network.to(device)
    params = sum(p.numel() for p in network.parameters())
    config = dict2config(
        {"scheduler": "cos", "eta_min": 0.0, "epochs": 200, "warmup": 0, "optim": "SGD",
         "LR": 0.1, "decay": 0.0005, "momentum": 0.9, "nesterov": True, "criterion": "Softmax"},
        None,
    )  # fmt: skip
    optimizer, scheduler, criterion = get_optim_scheduler(network.parameters(), config)
    batches = _synthetic_batches(bs, res, device, torch.contiguous_format)

    def epoch(steps: int) -> None:
        queue = [batches[i % len(batches)] for i in range(steps)]
        procedure(queue, network, criterion, scheduler, optimizer, "train")
        if cuda:
            torch.cuda.synchronize(device)

    _measure(args, epoch, bs, device, rss_before, params)


def memory_label(device: str) -> str:
    if device.startswith("cuda"):
        return "torch.cuda.max_memory_allocated over the timed steps"
    return "peak RSS (getrusage maxrss) minus the RSS before the network was built"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(
        parser, SETTINGS, IMPL_LABELS, step="steps",
        reference_help="folder holding a checkout of D-X-Y/AutoDL-Projects: also train their "
        "TinyNetwork of the same cell with their NB201 training loop (fp32), interleaved with "
        "ours, and print the ratios",
    )  # fmt: skip
    parser.add_argument("--arch", help="NB201 arch string (default: best cifar10_test_200 cell)")
    args = parser.parse_args(argv)
    finish_arguments(parser, args)
    if args.worker:
        _autodl_worker(args) if args.impl == "autodl" else _worker(args)
        return 0
    settings = selected_settings(parser, args, SETTINGS, DEFAULT_SETTINGS)
    variants = selected_variants(parser, args)
    reference = args.reference_dir
    if reference:
        from bench_supernet import find_reference

        if not os.path.isdir(reference) or "autodl" not in find_reference(reference):
            parser.error(
                f"--reference-dir {reference}: found no D-X-Y/AutoDL-Projects checkout "
                "(xautodl/models/cell_infers/tiny_network.py) in it or its sub-folders"
            )
    arch = args.arch or best_cifar10_arch()

    def measure(setting: str, variant: str, impl: str) -> dict[str, Any]:
        cmd = [
            sys.executable, os.path.abspath(__file__), "--worker", "--setting", setting,
            "--variant", variant, "--device", args.device, "--steps", str(args.steps),
            "--warmup", str(args.warmup), "--threads", str(args.threads), "--arch", arch,
            "--impl", impl,
        ]  # fmt: skip
        if impl != "ours":
            cmd += ["--reference-dir", os.path.abspath(reference)]
        return run_worker(cmd)

    print(
        f"# standalone training steps, NB201 {arch}, device={args.device}, "
        f"threads={args.threads or 'default'}, steps={args.steps}, warmup={args.warmup}, "
        f"repeats={args.repeats} (fresh subprocess each, interleaved)"
        + (f", reference: {os.path.abspath(reference)}" if reference else ""),
        flush=True,
    )
    combos = [(s, v, "ours") for s in settings for v in variants]
    if reference:  # their loop runs fp32 NCHW: side by side with our fp32
        combos = [
            c for s in settings for v in variants
            for c in ([(s, v, "ours"), (s, v, "autodl")] if v == "fp32" else [(s, v, "ours")])
        ]  # fmt: skip
    started = time.perf_counter()
    rows = summarise(interleaved(combos, args.repeats, measure), SETTINGS, IMPL_LABELS)
    print_table(rows, memory_label(args.device))
    ratio_table = ratios(rows)
    print_ratios(ratio_table)
    counts = {f"{r['setting']} {r['impl']}": r["params"] for r in rows if "params" in r}
    print("# parameters: " + ", ".join(f"{s} {n:,}" for s, n in counts.items()))
    figures = {
        "benchmark": "standalone",
        "arch": arch,
        "device": args.device,
        "threads": args.threads,
        "steps": args.steps,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "memory": memory_label(args.device),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "wall_seconds": time.perf_counter() - started,
        "results": rows,
        "ratios": ratio_table,
    }
    write_figures(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
