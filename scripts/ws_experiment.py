"""GAEA-DARTS vs DARTS on NB201, ERM and bilevel, at CPU scale: entropy, accuracy, genotype.

Runs plain-torch searches (no Ray) on the bundled CIFAR-10 subset and prints, per run, the
per-epoch mean edge entropy and supernet validation accuracy, then a table with the final
genotype (argmax of the final weights, and of the last epoch's mean weights) and its NB201
cifar10_test_200 accuracy (a monitor from the table; it never feeds the search).

    python scripts/ws_experiment.py                                  # paper arch lrs
    python scripts/ws_experiment.py --arch-lr gaea-darts=1.0,darts=0.01 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", default="gaea-darts,darts")
    parser.add_argument("--formulations", default="erm,bilevel")
    parser.add_argument("--arch-lr", default="", help="per-method overrides: m=lr,m=lr")
    parser.add_argument("--C", type=int, default=8)
    parser.add_argument("--N", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--max-train", type=int, default=None)
    parser.add_argument("--max-valid", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--json", help="write all curves to this file")
    parser.add_argument("--verbose", action="store_true", help="print every epoch")
    args = parser.parse_args(argv)

    import torch

    from gaea_tune.data import load_splits
    from gaea_tune.nb201_table import load_table
    from gaea_tune.weight_sharing import SearchOptions, SupernetSearch

    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {}
    for item in filter(None, args.arch_lr.split(",")):
        name, _, value = item.partition("=")
        overrides[name.strip()] = float(value)
    table = load_table()
    splits = load_splits(
        "cifar10-subset", seed=args.seed, resolution=args.resolution,
        max_train=args.max_train, max_valid=args.max_valid,
    )  # fmt: skip
    print(f"# cifar10-subset train {len(splits.train)} valid {len(splits.valid)} at "
          f"{splits.image_size}px; NB201 C={args.C} N={args.N}; {args.epochs} epochs; "
          f"seed {args.seed}", flush=True)  # fmt: skip
    runs = []
    for method in args.methods.split(","):
        for formulation in args.formulations.split(","):
            options = SearchOptions(
                C=args.C, N=args.N, epochs=args.epochs, formulation=formulation,
                arch_lr=overrides.get(method),
            )  # fmt: skip
            search = SupernetSearch.from_splits("nb201", method, options, splits, seed=args.seed)
            arch_lr = search.arch_opt.param_groups[0]["lr"] if search.arch_opt else None
            start = time.perf_counter()
            curve = []
            for _ in range(args.epochs):
                m = search.run_epoch()
                mean_genotype = str(search.genotype("epoch_mean"))
                curve.append({
                    "epoch": m["epoch"], "entropy": m["entropy"], "valid_acc": m["valid_acc"],
                    "train_acc": m["train_acc"], "genotype": m["genotype"],
                    "mean_genotype": mean_genotype,
                    "nb201": table.lookup(m["genotype"], "cifar10_test_200"),
                    "nb201_mean": table.lookup(mean_genotype, "cifar10_test_200"),
                    "max_weight": max(max(row) for row in m["arch_weights"][0]),
                })  # fmt: skip
                if args.verbose:
                    print(f"  epoch {m['epoch']}: entropy {m['entropy']:.4f} valid "
                          f"{m['valid_acc']:.1f}% ({time.perf_counter() - start:.0f} s)", flush=True)  # fmt: skip
            seconds = time.perf_counter() - start
            last = curve[-1]
            changes = sum(a["genotype"] != b["genotype"] for a, b in zip(curve, curve[1:]))
            run = {"method": method, "formulation": formulation, "arch_lr": arch_lr,
                   "seconds": seconds, "curve": curve, "genotype_changes": changes}  # fmt: skip
            runs.append(run)
            print(f"\n## {method} {formulation} arch_lr={arch_lr:g} ({seconds:.0f} s)")
            print("entropy  : " + " ".join(f"{c['entropy']:.4f}" for c in curve))
            print("valid %  : " + " ".join(f"{c['valid_acc']:.1f}" for c in curve))
            print("max w    : " + " ".join(f"{c['max_weight']:.3f}" for c in curve))
            print("NB201    : " + " ".join(f"{c['nb201']:.2f}" for c in curve))
            print(f"final    : {last['genotype']}  NB201 {last['nb201']:.2f}")
            print(f"mean-arg : {last['mean_genotype']}  NB201 {last['nb201_mean']:.2f}", flush=True)
    print(f"\n| method | form. | arch lr | entropy e1 -> e{args.epochs} | max w | valid % | "
          "genotype changes | final genotype | NB201 c10 test | epoch-mean NB201 |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        c = r["curve"]
        print(f"| {r['method']} | {r['formulation']} | {r['arch_lr']:g} | {c[0]['entropy']:.4f} -> "
              f"{c[-1]['entropy']:.4f} | {c[-1]['max_weight']:.3f} | {c[-1]['valid_acc']:.1f} | "
              f"{r['genotype_changes']} | `{c[-1]['genotype']}` | {c[-1]['nb201']:.2f} | "
              f"{c[-1]['nb201_mean']:.2f} |")  # fmt: skip
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(runs, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
