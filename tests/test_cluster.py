"""A comparison on a 2-node local Ray cluster: trials run on both nodes and complete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gaea_tune.config import ConfigError, parse_config
from gaea_tune.tune import compare

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def two_nodes():
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False)
    cluster.wait_for_nodes()
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def _config(tmp_path, **resources):
    return parse_config(
        {
            "name": "two-nodes",
            "space": {"name": "nb201", "C": 4, "N": 1},
            "dataset": {
                "name": "cifar10-subset",
                "resolution": 16,
                "max_train": 256,
                "max_valid": 128,
            },
            "budget": {"device_seconds": 10},
            "seeds": [0],
            "resources": {"gpu": 0, "cpu": 1, **resources},
            "output_dir": str(tmp_path / "out"),
            "methods": {"random": {"epochs": 2, "batch_size": 32, "max_concurrent": 2}},
        }
    )


def test_trials_spread_over_both_nodes(two_nodes, tmp_path):
    import ray

    result = compare(_config(tmp_path), address=two_nodes.address, progress=lambda t: None)
    outcome = result["outcomes"][0]
    assert outcome["trials"] >= 2 and outcome["genotype"] is not None
    events = (Path(result["run_dir"]) / "events" / "random-seed0.jsonl").read_text().splitlines()
    results = [json.loads(line) for line in events if '"result"' in line]
    trial_nodes = {event["node_id"] for event in results}
    cluster_nodes = {node["NodeID"] for node in ray.nodes() if node["Alive"]}
    assert trial_nodes == cluster_nodes and len(trial_nodes) == 2


def test_more_gpus_than_the_cluster_has_is_refused(two_nodes, tmp_path):
    with pytest.raises(
        ConfigError, match=r"resources.gpu: 1 per trial but the Ray cluster has 0 GPUs"
    ):
        compare(_config(tmp_path, gpu=1), address=two_nodes.address, progress=lambda t: None)
    assert not (tmp_path / "out").exists()
