"""Throughput and peak memory of full weight-sharing search steps on synthetic data.

A search step = one architecture step + one weight step on a batch (the images/s figure counts
the training batch's images once per step). Settings: ``paper`` (NB201 supernet at the GAEA
paper's size: C=16, N=5, batch 64, 32x32) and ``small`` (C=8, N=1, batch 64, 16x16).
Every repeat runs in a fresh subprocess so its peak memory is its own: on CPU the process's
peak resident set (``getrusage`` maxrss), on CUDA ``torch.cuda.max_memory_allocated``.

    python scripts/bench_supernet.py                       # CPU, both settings, 3 repeats
    python scripts/bench_supernet.py --device cuda --steps 300 --amp
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

SETTINGS = {
    "paper": {"C": 16, "N": 5, "batch_size": 64, "resolution": 32},
    "small": {"C": 8, "N": 1, "batch_size": 64, "resolution": 16},
}


def _worker(args: argparse.Namespace) -> None:
    import torch

    from gaea_tune.data import BatchLoader
    from gaea_tune.weight_sharing import SearchOptions, SupernetSearch

    if args.threads:
        torch.set_num_threads(args.threads)
    setting = SETTINGS[args.setting]
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    bs, res = setting["batch_size"], setting["resolution"]
    g = torch.Generator().manual_seed(0)
    n = bs * 4
    images = torch.randint(0, 256, (n, 3, res, res), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (n,), generator=g)

    def loader(train: bool, seed: int) -> BatchLoader:
        return BatchLoader(images, labels, bs, train=train, seed=seed, device=device)

    options = SearchOptions(
        C=setting["C"],
        N=setting["N"],
        epochs=1,
        arch_warmup_epochs=0,  # measure full search steps, architecture step included
        batch_size=bs,
        formulation=args.formulation,
        erm_joint=args.erm_joint,
        amp=args.amp,
        channels_last=not args.nchw,
    )
    search = SupernetSearch(
        args.space, args.method, options, loader(True, 0), loader(False, 0), loader(True, 1),
        num_classes=10, device=device, seed=0,
    )  # fmt: skip
    # synthetic batches prepared up front: the timing covers the search step only
    batches = [
        (x.to(device), y.to(device))
        for x, y in BatchLoader(images, labels, bs, train=False, device=device)
    ]
    tau = 1.0 if search.method.gumbel else None

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for i in range(args.warmup):
        search.train_step(*batches[i % len(batches)], tau)
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for i in range(args.steps):
        search.train_step(*batches[i % len(batches)], tau)
    sync()
    seconds = time.perf_counter() - start
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device)
        card = torch.cuda.get_device_name(device)
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
        card = f"cpu x{torch.get_num_threads()} threads"
    print(json.dumps({"img_s": args.steps * bs / seconds, "peak_bytes": peak, "card": card}))


def _run_once(args: argparse.Namespace, setting: str) -> dict[str, float]:
    cmd = [
        sys.executable, os.path.abspath(__file__), "--worker", "--setting", setting,
        "--device", args.device, "--steps", str(args.steps), "--warmup", str(args.warmup),
        "--method", args.method, "--formulation", args.formulation, "--space", args.space,
        "--threads", str(args.threads),
    ]  # fmt: skip
    if args.amp:
        cmd.append("--amp")
    if args.erm_joint:
        cmd.append("--erm-joint")
    if args.nchw:
        cmd.append("--nchw")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=10, help="timed search steps per repeat")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--amp", action="store_true", help="mixed precision (bfloat16 autocast)")
    parser.add_argument("--erm-joint", action="store_true",
                        help="ERM: architecture and weight gradients from one pass")  # fmt: skip
    parser.add_argument("--nchw", action="store_true", help="NCHW instead of channels_last")
    parser.add_argument("--method", default="gaea-darts")
    parser.add_argument("--formulation", default="erm", choices=("erm", "bilevel"))
    parser.add_argument("--space", default="nb201")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--settings", default="paper,small")
    parser.add_argument("--setting", help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args)
        return 0
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    for s in settings:
        if s not in SETTINGS:
            parser.error(f"unknown setting {s!r}; allowed: {', '.join(SETTINGS)}")
    variant = f"{args.method} {args.formulation}{' joint' if args.erm_joint else ''}"
    variant += ", NCHW" if args.nchw else ", channels_last"
    print(f"# {variant}, device={args.device}, amp={args.amp}, steps={args.steps}, "
          f"repeats={args.repeats}")  # fmt: skip
    header = f"{'setting':<8} {'C':>3} {'N':>2} {'res':>4} {'batch':>5} {'img/s best':>11} "
    header += f"{'img/s median':>13} {'peak MB max':>12}  card"
    print(header)
    for s in settings:
        runs = [_run_once(args, s) for _ in range(args.repeats)]
        rates = [r["img_s"] for r in runs]
        peak = max(r["peak_bytes"] for r in runs) / 2**20
        cfg = SETTINGS[s]
        print(
            f"{s:<8} {cfg['C']:>3} {cfg['N']:>2} {cfg['resolution']:>4} {cfg['batch_size']:>5} "
            f"{max(rates):>11.1f} {statistics.median(rates):>13.1f} {peak:>12.0f}  {runs[0]['card']}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
