"""A standalone NB201 network learns from the bundled CIFAR-10 subset: its loss falls."""

from __future__ import annotations

import torch

from gaea_tune.data import load_splits
from search_spaces.nb201 import NB201Genotype, NB201Network

BEST_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def test_standalone_network_loss_falls_on_the_bundled_subset():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        splits = load_splits("cifar10-subset", resolution=16, max_train=256, max_valid=64)
        network = NB201Network(NB201Genotype.from_string(BEST_CELL), C=8, N=1, num_classes=10)
        optimizer = torch.optim.SGD(network.parameters(), lr=0.05, momentum=0.9, nesterov=True)
        loader = splits.loader("train", 64, seed=0)
        losses = []
        for _ in range(6):  # 6 epochs x 4 batches of real images
            for images, labels in loader:
                loss = torch.nn.functional.cross_entropy(network(images), labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(float(loss.detach()))
    finally:
        torch.set_num_threads(threads)
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert first > 2.0  # starts near chance (ln 10 = 2.30)
    assert last < first - 0.3, f"loss did not fall: {first:.3f} -> {last:.3f}"
