"""Throughput and peak memory of full weight-sharing search steps on synthetic data.

A search step = one architecture step + one weight step on a batch (the images/s figure counts
the training batch's images once per step), on random batches prepared on the device up front
(the architecture steps take them in their own order), so the timing covers the search step
only. Settings: ``paper`` (NB201 supernet at the GAEA paper's size: C=16, N=5, batch 64,
32x32), ``small`` (C=8, N=1, batch 64, 16x16) and ``quick`` (C=8, N=1, batch 16, 16x16, a few
steps; what ``--quick`` runs). Numerics (``--variants``): ``fp32`` (float32, NCHW), ``bf16-cl``
(bfloat16 autocast, channels_last), ``bf16``, ``fp32-cl``, and ``comparison``: what a search in
a comparison runs on the device and space by default (``bf16-cl`` on CUDA; on CPU ``fp32-cl``
for NB201 and ``fp32`` for DARTS: ``gaea_tune.weight_sharing.default_numerics``). Default: ``fp32,comparison``; ``--amp`` / ``--nchw`` without ``--variants`` select
the one variant they name (channels_last unless ``--nchw``).

Every measurement runs in a fresh subprocess (this script in worker mode), and the repeats are
interleaved across settings (A B A B A B, not A A A B B B); the table gives the median and the
spread (min-max) of the repeats, and images per second of the process's CPU time (img/cpu-s,
all its threads; steadier than img/s when other work shares the cores). Peak memory: on CUDA
``torch.cuda.max_memory_allocated`` over the timed steps; on CPU the process's peak resident
set (``getrusage`` maxrss) minus its resident set before the supernet was built (the JSON also
holds the whole peak RSS).

``--reference-dir PATH`` (a folder holding checkouts of liamcli/gaea_release and its AutoDL fork
liamcli/AutoDL-Projects, e.g. cloned into /tmp/refs; nothing of theirs is copied into this
repository) also runs GAEA's own code for the same step in the same way, interleaved with ours:
their NB201 supernet (``NASBENCH201Network``, GAEA-DARTS ``ArchitectEDARTS``, ERM single level,
``none`` excluded, their ``train_search.train`` loop: architecture step, then weight step with
SGD and gradient clipping), fp32 NCHW, and prints ours/theirs for images/s (median, and the range
over repeats paired in run order), img/cpu-s and peak memory.

    python scripts/bench_supernet.py                       # CPU, 2 threads, both settings
    python scripts/bench_supernet.py --reference-dir /tmp/refs            # vs GAEA's code
    python scripts/bench_supernet.py --device cuda --steps 300 --json supernet.json
    python scripts/bench_supernet.py --quick --repeats 1   # smoke test, seconds
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
import types
from typing import Any

SETTINGS = {
    "paper": {"C": 16, "N": 5, "batch_size": 64, "resolution": 32},
    "small": {"C": 8, "N": 1, "batch_size": 64, "resolution": 16},
    "quick": {"C": 8, "N": 1, "batch_size": 16, "resolution": 16},
}
DEFAULT_SETTINGS = "paper,small"
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
QUICK_STEPS, QUICK_WARMUP = 3, 1


def resolve_variants(text: str, device: str, space: str = "nb201") -> list[str]:
    """Variant names from a comma list; ``comparison`` -> the numerics a comparison runs on
    ``device`` and ``space`` by default (``default_numerics``)."""
    out: list[str] = []
    for name in (v.strip() for v in text.split(",")):
        if not name:
            continue
        if name == "comparison":
            from gaea_tune.weight_sharing import default_numerics

            auto = default_numerics(device.split(":")[0], space)
            name = ("bf16" if auto["amp"] else "fp32") + ("-cl" if auto["channels_last"] else "")
        if name not in VARIANTS:
            allowed = ", ".join([*VARIANTS, "comparison"])
            raise ValueError(f"unknown variant {name!r}; allowed: {allowed}")
        if name not in out:
            out.append(name)
    if not out:
        raise ValueError(f"no variant in {text!r}; allowed: {', '.join([*VARIANTS, 'comparison'])}")
    return out


def current_rss_bytes() -> int:
    """The process's resident set now (Linux /proc; elsewhere its peak so far)."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return peak_rss_bytes()


def peak_rss_bytes() -> int:
    scale = 1 if sys.platform == "darwin" else 1024  # Linux reports KiB, macOS bytes
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _synthetic_batches(bs: int, res: int, device: Any, count: int = 4) -> list[tuple[Any, Any]]:
    """``count`` random batches (normal images, labels of 10 classes), already on ``device``."""
    import torch

    g = torch.Generator().manual_seed(0)
    return [
        (
            torch.randn(bs, 3, res, res, generator=g).to(device),
            torch.randint(0, 10, (bs,), generator=g).to(device),
        )
        for _ in range(count)
    ]


def prime_torch(device: Any) -> None:
    """One tiny conv step and optimiser step before the memory baseline, in every worker
    (ours and the reference code's alike): torch loads parts lazily on first use (the optimiser
    machinery pulls in ~150 MB of modules, the conv backend its buffers), which is a cost of the
    process, not of the network being measured."""
    import torch

    weight = torch.nn.Parameter(torch.randn(4, 3, 3, 3, device=device))
    for opt in (torch.optim.SGD([weight], lr=0.1, momentum=0.9), torch.optim.Adam([weight])):
        x = torch.randn(2, 3, 8, 8, device=device)
        torch.nn.functional.conv2d(x, weight, padding=1).relu().sum().backward()
        opt.step()
        opt.zero_grad()


def _report(
    args: argparse.Namespace,
    bs: int,
    seconds: float,
    cpu_seconds: float,
    rss_before: int,
    device: Any,
    **extra: Any,
) -> None:
    """The worker's result line: images/s, peak memory, the device (and ``extra`` fields)."""
    import torch

    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device)
        card = torch.cuda.get_device_name(device)
    else:
        peak = max(0, peak_rss_bytes() - rss_before)
        card = f"cpu x{torch.get_num_threads()} threads"
    result = {
        "img_s": args.steps * bs / seconds,
        # per second of the process's CPU time (all its threads): steadier than img/s when
        # other work shares the machine's cores
        "img_cpu_s": args.steps * bs / max(cpu_seconds, 1e-9),
        "peak_bytes": peak,
        "peak_rss_bytes": peak_rss_bytes(),
        "card": card,
        **extra,
    }
    print(json.dumps(result))


def _worker(args: argparse.Namespace) -> None:
    import gc

    import torch

    from gaea_tune.weight_sharing import SearchOptions, SupernetSearch

    if args.threads:
        torch.set_num_threads(args.threads)
    setting = SETTINGS[args.setting]
    amp, channels_last = VARIANTS[args.variant]
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    prime_torch(device)
    gc.collect()
    rss_before = current_rss_bytes()  # everything below (supernet, data, steps) is measured

    bs, res = setting["batch_size"], setting["resolution"]
    # synthetic batches prepared on the device up front, for the weight steps and (in their
    # own order, as ERM draws them) the architecture steps: the timing covers the search step
    batches = _synthetic_batches(bs, res, device)
    arch_batches = batches[1:] + batches[:1]
    options = SearchOptions(
        C=setting["C"],
        N=setting["N"],
        epochs=1,
        arch_warmup_epochs=0,  # measure full search steps, architecture step included
        batch_size=bs,
        formulation=args.formulation,
        erm_joint=args.erm_joint,
        amp=amp,
        channels_last=channels_last,
    )
    search = SupernetSearch(
        args.space, args.method, options, batches, batches[:1], arch_batches,
        num_classes=10, device=device, seed=0,
    )  # fmt: skip
    tau = 1.0 if search.method.gumbel else None

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    for i in range(args.warmup):
        search.train_step(*batches[i % len(batches)], tau)
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    for i in range(args.steps):
        search.train_step(*batches[i % len(batches)], tau)
    sync()
    _report(
        args, bs, time.perf_counter() - start, time.process_time() - cpu_start, rss_before, device
    )


# --------------------------------------------------------------------------- reference code
# The side-by-side measurement (``--reference-dir``) runs GAEA's own NB201 search code
# (liamcli/gaea_release cnn/, on its AutoDL fork liamcli/AutoDL-Projects lib/) from checkouts
# outside this repository. Nothing of theirs is copied here: the worker puts their folders on
# sys.path, stubs the packages their modules import but a search step never uses (hydra, boto3,
# tensorboard), maps their hard-coded ``.cuda()`` calls to the benchmark's device, and calls
# their ``train_search.train`` (architecture step, then weight step, per batch).


def find_reference(root: str) -> dict[str, str]:
    """The reference checkouts under ``root`` (itself or its sub-folders, one level deep):
    ``gaea`` (gaea_release: cnn/search_spaces/nasbench_201/model_search.py), ``fork`` (the
    AutoDL fork GAEA imports as ``lib``: lib/models/cell_searchs/search_cells.py with
    ``forward_edge_weights``) and ``autodl`` (D-X-Y/AutoDL-Projects: xautodl/)."""
    found: dict[str, str] = {}
    base = os.path.abspath(root)
    candidates = [base] + sorted(
        os.path.join(base, d) for d in os.listdir(base) if os.path.isdir(os.path.join(base, d))
    )
    for path in candidates:
        if os.path.isfile(os.path.join(path, "cnn/search_spaces/nasbench_201/model_search.py")):
            found.setdefault("gaea", path)
        cells = os.path.join(path, "lib/models/cell_searchs/search_cells.py")
        if os.path.isfile(cells):
            with open(cells) as handle:
                if "forward_edge_weights" in handle.read():
                    found.setdefault("fork", path)
        if os.path.isfile(os.path.join(path, "xautodl/models/cell_infers/tiny_network.py")):
            found.setdefault("autodl", path)
    return found


class _Config(types.SimpleNamespace):
    """Their hydra config as attributes; ``"key" in section`` as omegaconf answers it."""

    def __contains__(self, key: str) -> bool:
        return hasattr(self, key)


def _reference_shims(device: Any) -> None:
    """Stand-ins for what GAEA's modules import at the top but a search step never uses, and
    their ``.cuda()`` calls mapped to ``device`` (a no-op when that is the CUDA device)."""
    import torch

    def stub(name: str, **attrs: Any) -> None:
        try:
            __import__(name)
        except ImportError:
            module = types.ModuleType(name)
            module.__dict__.update(attrs)
            sys.modules[name] = module

    stub("hydra", main=lambda **_: lambda fn: fn)
    stub("boto3")
    stub("torch.utils.tensorboard", SummaryWriter=object)
    if device.type != "cuda":
        torch.Tensor.cuda = lambda self, *a, **k: self.to(device)  # type: ignore[method-assign]
        torch.nn.Module.cuda = lambda self, *a, **k: self.to(device)  # type: ignore[method-assign]
        torch.cuda.current_device = lambda: 0  # type: ignore[assignment]


def _topk_accuracy(output: Any, target: Any, topk: tuple[int, ...] = (1,)) -> list[Any]:
    """Their ``train_utils.accuracy`` (top-k precision per batch, as tensors), with ``reshape``
    where theirs calls ``view`` on a transposed tensor, which torch >= 1.5 refuses."""
    maxk = max(topk)
    _, pred = output.topk(maxk, 1, True, True)
    correct = pred.t().eq(target.view(1, -1).expand(maxk, -1))
    return [correct[:k].reshape(-1).float().sum(0).mul_(100.0 / target.size(0)) for k in topk]


class _NullWriter:
    """Their SummaryWriter, minus the files (the benchmark measures the search step)."""

    def add_scalar(self, *_: Any, **__: Any) -> None:
        pass


def _gaea_worker(args: argparse.Namespace) -> None:
    """GAEA-DARTS ERM on NB201 as gaea_release runs it (nas_algo=edarts,
    search_config=method_edarts_space_nasbench201, search.single_level=true,
    search.exclude_zero=true), through their own ``train_search.train``."""
    import gc
    import logging
    import warnings

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    setting = SETTINGS[args.setting]
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.cuda.set_device(device)
    ref = find_reference(args.reference_dir)
    missing = {"gaea", "fork"} - set(ref)
    if missing:
        raise SystemExit(f"--reference-dir {args.reference_dir}: no {', '.join(sorted(missing))}")
    sys.path[:0] = [
        os.path.join(ref["gaea"], "cnn"), ref["fork"], os.path.join(ref["fork"], "lib"),
    ]  # fmt: skip
    _reference_shims(device)
    warnings.simplefilter("ignore")  # their deprecated calls (clip_grad_norm, Variable)
    logging.disable(logging.INFO)
    import train_search
    import train_utils
    from architect.architect_edarts import ArchitectEDARTS
    from search_spaces.nasbench_201.model_search import NASBENCH201Network

    import search_spaces  # theirs: cnn/search_spaces, not this repository's package

    assert search_spaces.__file__.startswith(os.path.join(ref["gaea"], "cnn")), search_spaces
    prime_torch(device)
    gc.collect()
    rss_before = current_rss_bytes()

    bs, res = setting["batch_size"], setting["resolution"]
    cfg = _Config(
        run=_Config(epochs=50, scheduler_epochs=50, report_freq=50),
        search=_Config(
            method="edarts", search_space="nas-bench-201", single_level=True, unrolled=False,
            discrete=False, exclude_zero=True, track_running_stats=True, nodes=3,
            learn_edges=False, trace_norm=None, arch_learning_rate=0.1, edge_learning_rate=0.0,
            arch_grad_clip=None, adapt_lr=False, arch_weight_decay=0.0, gd=False,
        ),
        train=_Config(
            scheduler="cosine", lr_anneal_cycles=1, learning_rate=0.025, learning_rate_min=0.001,
            momentum=0.9, weight_decay=0.0003, init_channels=setting["C"], layers=setting["N"],
            auxiliary=False, grad_clip=5, drop_path_prob=0,
        ),
    )  # fmt: skip
    torch.manual_seed(0)
    criterion = torch.nn.CrossEntropyLoss()
    model = NASBENCH201Network(
        cfg.train.init_channels, 10, cfg.search.nodes, cfg.train.layers, criterion,
        search_space_name=cfg.search.search_space, exclude_zero=cfg.search.exclude_zero,
        track_running_stats=cfg.search.track_running_stats,
    ).to(device)  # fmt: skip
    optimizer, _ = train_utils.setup_optimizer(model, cfg)
    train_utils.accuracy = _topk_accuracy  # their train() looks it up on the module
    architect = ArchitectEDARTS(model, cfg, _NullWriter())
    batches = _synthetic_batches(bs, res, device)
    lr = optimizer.param_groups[0]["lr"]

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    def steps(n: int) -> None:
        # single level: the architecture batch is next(iter(valid_queue)) per step
        queue = [batches[i % len(batches)] for i in range(n)]
        arch_queue = [batches[(i + 1) % len(batches)] for i in range(len(batches))]
        train_search.train(cfg, queue, arch_queue, model, architect, criterion, optimizer, lr)

    if args.warmup:
        steps(args.warmup)
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    steps(args.steps)
    sync()
    _report(
        args, bs, time.perf_counter() - start, time.process_time() - cpu_start, rss_before, device
    )


def run_worker(cmd: list[str]) -> dict[str, Any]:
    """One measurement in a fresh interpreter; its last stdout line is the JSON result."""
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write(out.stdout + out.stderr)
        raise SystemExit(f"benchmark worker failed (exit {out.returncode}): {' '.join(cmd)}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"    {json.dumps(result)}", file=sys.stderr, flush=True)  # each run as it comes
    return result


def spread(values: list[float]) -> dict[str, Any]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": values,
    }


Combo = tuple[str, str, str]  # (setting, variant, implementation)
IMPL_LABELS = {"ours": "gaea-tune", "gaea": "gaea_release (reference)"}


def interleaved(
    combos: list[Combo], repeats: int, measure: Any
) -> dict[Combo, list[dict[str, Any]]]:
    """``measure(setting, variant, impl)`` for every combination, repeats interleaved
    (A B A B A B, not A A A B B B), so drift of the machine spreads over all of them."""
    runs: dict[Combo, list[dict[str, Any]]] = {c: [] for c in combos}
    for r in range(repeats):
        for combo in combos:
            print(f"  repeat {r + 1}/{repeats}: {' '.join(combo)}", file=sys.stderr, flush=True)
            runs[combo].append(measure(*combo))
    return runs


def summarise(
    runs: dict[Combo, list[dict[str, Any]]],
    settings: dict[str, dict[str, int]] | None = None,
    labels: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    settings = SETTINGS if settings is None else settings
    labels = IMPL_LABELS if labels is None else labels
    rows = []
    for (setting, variant, impl), results in runs.items():
        amp, channels_last = VARIANTS[variant]
        rows.append(
            {
                "setting": setting,
                **settings[setting],
                "variant": variant,
                "numerics": VARIANT_LABELS[variant],
                "amp": amp,
                "channels_last": channels_last,
                "impl": impl,
                "code": labels[impl],
                "img_s": spread([r["img_s"] for r in results]),
                "img_cpu_s": spread([r["img_cpu_s"] for r in results]),
                "peak_mb": spread([r["peak_bytes"] / 2**20 for r in results]),
                "peak_rss_mb": spread([r["peak_rss_bytes"] / 2**20 for r in results]),
                "card": results[0]["card"],
                **({"params": results[0]["params"]} if "params" in results[0] else {}),
            }
        )
    return rows


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ours over the reference per setting, for each of our variants at the reference's
    precision (their fp32 NCHW against our fp32 in either memory format: the layout is a
    choice of the code, the arithmetic is the same): medians of images/s and peak memory, and
    the range of images/s ratios over the repeats paired in run order (each pair ran back to
    back)."""
    out = []
    ours = [r for r in rows if r["impl"] == "ours"]
    for ref in (r for r in rows if r["impl"] != "ours"):
        for mine in ours:
            if mine["setting"] != ref["setting"]:
                continue
            if VARIANTS[mine["variant"]][0] != VARIANTS[ref["variant"]][0]:
                continue
            out.append(_ratio(mine, ref))
    return out


def _ratio(mine: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    paired = [a / b for a, b in zip(mine["img_s"]["runs"], ref["img_s"]["runs"])]
    ref_mb = ref["peak_mb"]["median"]
    return {
        "setting": ref["setting"],
        "variant": mine["variant"],
        "reference_variant": ref["variant"],
        "reference": ref["impl"],
        "img_s_ratio": mine["img_s"]["median"] / ref["img_s"]["median"],
        "img_s_ratio_min": min(paired),
        "img_s_ratio_max": max(paired),
        "img_cpu_s_ratio": mine["img_cpu_s"]["median"] / ref["img_cpu_s"]["median"],
        "peak_mb_ratio": mine["peak_mb"]["median"] / ref_mb if ref_mb else None,
    }


def print_table(rows: list[dict[str, Any]], memory_label: str) -> None:
    print(
        f"{'setting':<8} {'numerics':<28} {'code':<26} {'C':>3} {'N':>2} {'res':>4} {'batch':>5} "
        f"{'img/s median':>13} {'img/s min-max':>17} {'img/cpu-s':>9} {'MB median':>10} "
        f"{'MB min-max':>13}  card"
    )
    for row in rows:
        img, mem = row["img_s"], row["peak_mb"]
        print(
            f"{row['setting']:<8} {row['numerics']:<28} {row['code']:<26} {row['C']:>3} "
            f"{row['N']:>2} {row['resolution']:>4} {row['batch_size']:>5} {img['median']:>13.1f} "
            f"{img['min']:>8.1f}-{img['max']:<8.1f} {row['img_cpu_s']['median']:>9.1f} "
            f"{mem['median']:>10.1f} "
            f"{mem['min']:>6.0f}-{mem['max']:<6.0f}  {row['card']}",
            flush=True,
        )
    print(f"# MB: {memory_label}")


def print_ratios(table: list[dict[str, Any]]) -> None:
    for r in table:
        mem = "n/a" if r["peak_mb_ratio"] is None else f"{r['peak_mb_ratio']:.2f}x"
        print(
            f"# ours {r['variant']}/{r['reference']} {r['reference_variant']} {r['setting']}: img/s "
            f"{r['img_s_ratio']:.2f}x (paired repeats {r['img_s_ratio_min']:.2f}-"
            f"{r['img_s_ratio_max']:.2f}), img/cpu-s {r['img_cpu_s_ratio']:.2f}x, "
            f"peak memory {mem}",
            flush=True,
        )


def memory_label(device: str) -> str:
    if device.startswith("cuda"):
        return "torch.cuda.max_memory_allocated over the timed steps"
    return "peak RSS (getrusage maxrss) minus the RSS before the supernet was built"


DEFAULT_VARIANTS = "fp32,comparison"


def add_common_arguments(
    parser: argparse.ArgumentParser,
    settings: dict[str, dict[str, int]],
    impl_labels: dict[str, str],
    *,
    step: str,
    reference_help: str,
) -> None:
    """The options both benchmarks take (device, steps, repeats, numerics, settings, figures,
    the reference checkouts) and the hidden ones of worker mode. ``step``: what a timed step
    is, for the help ("search steps"); ``reference_help``: what ``--reference-dir`` runs."""
    add = parser.add_argument
    add("--device", default="cpu", help="cpu | cuda | cuda:N")
    add("--steps", type=int, default=None, help=f"timed {step} (default 10)")
    add("--warmup", type=int, default=None, help="untimed steps (default 2)")
    add("--repeats", type=int, default=3, help="fresh subprocesses per setting")
    add("--threads", type=int, default=None,
        help="torch threads (default: 2 on CPU; 0: torch's)")  # fmt: skip
    add("--settings", default=None, help=f"from {', '.join(settings)}")
    add("--variants", default=None, help=f"numerics, comma list (default: {DEFAULT_VARIANTS})")
    add("--quick", action="store_true", help="smoke setting: C=8, N=1, batch 16")
    add("--json", metavar="PATH", help="also write the figures to PATH")
    add("--reference-dir", metavar="PATH", help=reference_help)
    add("--setting", help=argparse.SUPPRESS)
    add("--variant", help=argparse.SUPPRESS)
    add("--impl", default="ours", choices=tuple(impl_labels), help=argparse.SUPPRESS)
    add("--worker", action="store_true", help=argparse.SUPPRESS)


def finish_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The defaults that depend on other options: ``--threads`` (0, torch's own, on CUDA; 2 on
    CPU), ``--steps`` and ``--warmup`` (fewer with ``--quick``); outside worker mode a usage
    error (exit 2) for ``--steps`` or ``--repeats`` below 1."""
    if args.threads is None:
        args.threads = 0 if args.device.startswith("cuda") else 2
    if args.steps is None:
        args.steps = QUICK_STEPS if args.quick else 10
    if args.warmup is None:
        args.warmup = QUICK_WARMUP if args.quick else 2
    if not args.worker and (args.steps < 1 or args.repeats < 1):
        parser.error("--steps and --repeats must be >= 1")
    if not args.worker and args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            parser.error(
                f"--device {args.device}: torch sees no CUDA device here; use --device cpu"
            )


def selected_settings(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    settings: dict[str, dict[str, int]],
    default: str,
) -> list[str]:
    """The names in ``--settings`` (``quick`` with ``--quick``, else ``default``: a comma
    list); an unknown name is a usage error (exit 2) listing ``settings``."""
    chosen = [s.strip() for s in (args.settings or "").split(",") if s.strip()]
    chosen = chosen or (["quick"] if args.quick else default.split(","))
    for s in chosen:
        if s not in settings:
            parser.error(f"unknown setting {s!r}; allowed: {', '.join(settings)}")
    return chosen


def selected_variants(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """The numerics of ``--variants`` (default ``fp32,comparison``) resolved for the device;
    an unknown name is a usage error (exit 2)."""
    try:
        space = getattr(args, "space", "nb201")  # the standalone benchmark: NB201
        return resolve_variants(args.variants or DEFAULT_VARIANTS, args.device, space)
    except ValueError as error:
        parser.error(str(error))


def write_figures(path: str | None, figures: dict[str, Any]) -> None:
    """``figures`` as JSON to ``path`` (``--json``; its folder made), if given."""
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as handle:
            json.dump(figures, handle, indent=1)
        print(f"# figures written to {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(
        parser, SETTINGS, IMPL_LABELS, step="search steps",
        reference_help="folder holding checkouts of liamcli/gaea_release and its AutoDL fork "
        "(liamcli/AutoDL-Projects): also run GAEA's own NB201 search step (fp32, GAEA-DARTS "
        "ERM), interleaved with ours, and print the ratios (default settings: paper)",
    )  # fmt: skip
    parser.add_argument("--amp", action="store_true",
                        help="without --variants: bfloat16 autocast (channels_last unless --nchw)")  # fmt: skip
    parser.add_argument("--erm-joint", action="store_true",
                        help="ERM: architecture and weight gradients from one pass")  # fmt: skip
    parser.add_argument("--nchw", action="store_true",
                        help="without --variants: NCHW instead of channels_last")  # fmt: skip
    parser.add_argument("--method", default="gaea-darts")
    parser.add_argument("--formulation", default="erm", choices=("erm", "bilevel"))
    parser.add_argument("--space", default="nb201")
    args = parser.parse_args(argv)
    finish_arguments(parser, args)
    if args.worker:
        _gaea_worker(args) if args.impl == "gaea" else _worker(args)
        return 0
    reference = args.reference_dir
    if reference:
        if not os.path.isdir(reference):
            parser.error(f"--reference-dir {reference}: not a folder")
        missing = {"gaea", "fork"} - set(find_reference(reference))
        if missing:
            parser.error(
                f"--reference-dir {reference}: found no "
                + " and no ".join(
                    {"gaea": "gaea_release checkout (cnn/search_spaces/nasbench_201)",
                     "fork": "AutoDL fork (lib/models/cell_searchs with forward_edge_weights)"}[m]
                    for m in sorted(missing)
                )
            )  # fmt: skip
        if (args.method, args.formulation, args.space) != ("gaea-darts", "erm", "nb201"):
            parser.error("--reference-dir compares GAEA-DARTS ERM on nb201 only")
        if args.erm_joint:
            parser.error("--reference-dir runs the separate architecture step GAEA runs")
    settings = selected_settings(parser, args, SETTINGS, "paper" if reference else DEFAULT_SETTINGS)
    if args.variants is None and (args.amp or args.nchw):
        variants = [("bf16" if args.amp else "fp32") + ("" if args.nchw else "-cl")]
    else:
        variants = selected_variants(parser, args)

    def measure(setting: str, variant: str, impl: str) -> dict[str, Any]:
        cmd = [
            sys.executable, os.path.abspath(__file__), "--worker", "--setting", setting,
            "--variant", variant, "--device", args.device, "--steps", str(args.steps),
            "--warmup", str(args.warmup), "--method", args.method,
            "--formulation", args.formulation, "--space", args.space,
            "--threads", str(args.threads), "--impl", impl,
        ]  # fmt: skip
        if args.erm_joint:
            cmd.append("--erm-joint")
        if impl != "ours":
            cmd += ["--reference-dir", os.path.abspath(reference)]
        return run_worker(cmd)

    search = f"{args.method} {args.formulation}{' joint' if args.erm_joint else ''}"
    print(
        f"# search steps, {search}, device={args.device}, "
        f"threads={args.threads or 'default'}, steps={args.steps}, warmup={args.warmup}, "
        f"repeats={args.repeats} (fresh subprocess each, interleaved)"
        + (f", reference: {os.path.abspath(reference)}" if reference else ""),
        flush=True,
    )
    combos: list[Combo] = [(s, v, "ours") for s in settings for v in variants]
    if reference:  # their code runs fp32 NCHW: side by side with our fp32
        combos = [
            c for s in settings for v in variants
            for c in ([(s, v, "ours"), (s, v, "gaea")] if v == "fp32" else [(s, v, "ours")])
        ]  # fmt: skip
    started = time.perf_counter()
    rows = summarise(interleaved(combos, args.repeats, measure))
    print_table(rows, memory_label(args.device))
    ratio_table = ratios(rows)
    print_ratios(ratio_table)
    figures = {
        "benchmark": "supernet",
        "method": args.method,
        "formulation": args.formulation,
        "erm_joint": args.erm_joint,
        "space": args.space,
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
