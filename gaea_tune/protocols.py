"""Final-retrain protocols: how an incumbent is retrained from scratch for its ground truth where
no table gives one (the DARTS space). One protocol per comparison, whatever family found the
incumbent, so the table compares cells and not training recipes.

Plain Python (configuration validation reads it). Presets:

``proxy`` (default)
    The comparison's own network size (``space.C``, ``space.N``), ``final_retrain.epochs``
    epochs, SGD momentum 0.9, lr 0.025 cosine, weight decay 3e-4, batch 96, gradient clip 5, no
    cutout, auxiliary head or drop-path: a cheap check, labelled as such in the report.
``darts-paper``
    DARTS's CIFAR-10 evaluation (quark0/darts, ``cnn/train.py`` defaults): C=36, 20 cells,
    600 epochs, batch 96, lr 0.025 cosine to 0, momentum 0.9, weight decay 3e-4, gradient clip 5,
    cutout 16, auxiliary head weight 0.4, drop-path 0.2 raised linearly over training. DARTS
    space only.

Both train on every labelled training image the dataset has (train and valid when valid is a
held-out part of the training set, as for ``cifar10-valid``: NB201's and DARTS's "train on all
50k, test on the test set") and report test accuracy once, at the end.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from gaea_tune._constraints import Interval, OneOf, OptionError, validate_options


@dataclass(frozen=True)
class RetrainProtocol:
    """One retrain recipe. ``C``/``N`` None: the comparison's space settings."""

    name: str
    epochs: int
    C: int | None = None
    N: int | None = None
    batch_size: int = 96
    lr: float = 0.025
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    cutout: int = 0
    auxiliary_weight: float = 0.0
    drop_path: float = 0.0
    spaces: tuple[str, ...] = ("nb201", "darts")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("spaces")
        return out


PRESETS: dict[str, RetrainProtocol] = {
    "proxy": RetrainProtocol(name="proxy", epochs=0),
    "darts-paper": RetrainProtocol(
        name="darts-paper", epochs=600, C=36, N=20, cutout=16, auxiliary_weight=0.4,
        drop_path=0.2, spaces=("darts",),
    ),
}  # fmt: skip

# ``final_retrain:`` keys of a config; every protocol field may be overridden.
CONSTRAINTS: dict[str, Any] = {
    "preset": OneOf(tuple(PRESETS)),
    "epochs": Interval(int, 0, 10_000),
    "C": Interval(int, 1, 1024),
    "N": Interval(int, 1, 64),
    "batch_size": Interval(int, 1, 65_536),
    "lr": Interval(float, 1e-6, 10.0),
    "momentum": Interval(float, 0.0, 0.999),
    "weight_decay": Interval(float, 0.0, 1.0),
    "grad_clip": Interval(float, 0.0, 1e6),
    "cutout": Interval(int, 0, 1024),
    "auxiliary_weight": Interval(float, 0.0, 10.0),
    "drop_path": Interval(float, 0.0, 0.99),
}


def resolve_retrain(settings: dict[str, Any], space: str) -> RetrainProtocol:
    """The protocol a ``final_retrain:`` mapping asks for on ``space``; raises
    :class:`OptionError` (one line) for a bad key, value or a preset of another space."""
    checked = validate_options("final_retrain", dict(settings), CONSTRAINTS)
    preset = PRESETS[checked.pop("preset", "proxy")]
    if space not in preset.spaces:
        raise OptionError(
            f"final_retrain.preset: {preset.name!r} is a {'/'.join(preset.spaces)}-space "
            f"protocol, got space {space!r}; allowed here: "
            + ", ".join(n for n, p in PRESETS.items() if space in p.spaces)
        )
    if (checked.get("auxiliary_weight") or checked.get("drop_path")) and space != "darts":
        raise OptionError(
            "final_retrain: auxiliary_weight and drop_path exist only in the DARTS space's "
            f"evaluation network, got space {space!r}"
        )
    return replace(preset, **checked)
