"""Granularity of the gateway ingress NetworkPolicies (R42): one per consumer namespace, or per endpoint?

    python3 bench/gateway_ingress.py                # builder figures only, a few seconds
    python3 bench/gateway_ingress.py --apply 2000   # also applies that many policies to a private testbed

Builds, with the operator's own builder (vpcep.builders.gateway_ingress), the policies for N endpoints spread
over M consumer namespaces (default 10,000 / 2,000, one port each), in two port layouts: endpoints created
namespace after namespace (a namespace's ports are neighbours: one `port`/`endPort` run) and round-robin
over the namespaces (no two ports of a namespace neighbours: the worst case for runs). Reports object count,
stored bytes (compact JSON, as the API server stores and every watcher receives them), the largest object,
and the CPU of one namespace's reconcile (recompute + hash, the operator's work per key) and of all of them.

With --apply, starts a private testbed (hack/testbed, its own ports and directory) and server-side applies
that many policies, one request each as the operator does, reporting applies per second: the cost of a first
install or a full re-create (a restart that finds every policy current writes nothing: the stored spec hash
matches).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "operator"))

from vpcep.builders.gateway_ingress import build_gateway_ingress_policy
from vpcep.state.gateway_ingress_state import spec_hash

GATEWAY_LABELS = {"app.kubernetes.io/name": "vpcep-gateway", "app.kubernetes.io/instance": "vpcep"}
FIRST_PORT = 20000


def layout(endpoints: int, namespaces: int, round_robin: bool) -> dict[str, list[list[int]]]:
    """namespace -> the ports of each of its endpoints (one port per endpoint), lowest-first allocation."""
    by_namespace: dict[str, list[list[int]]] = {f"team-{n:04d}": [] for n in range(namespaces)}
    names = list(by_namespace)
    per_namespace = endpoints // namespaces
    for index in range(endpoints):
        namespace = (
            names[index % namespaces] if round_robin else names[min(index // per_namespace, namespaces - 1)]
        )
        by_namespace[namespace].append([FIRST_PORT + index])
    return by_namespace


def stored_bytes(manifest: dict) -> int:
    return len(json.dumps(manifest, separators=(",", ":")).encode())


def measure(endpoints: int, namespaces: int, round_robin: bool) -> dict[str, float]:
    spread = layout(endpoints, namespaces, round_robin)
    per_namespace = [
        build_gateway_ingress_policy(ns, [p for ports in held for p in ports], "vpcep-system", GATEWAY_LABELS)
        for ns, held in spread.items()
    ]
    per_endpoint = [
        build_gateway_ingress_policy(f"{ns}-e{i}", ports, "vpcep-system", GATEWAY_LABELS)
        for ns, held in spread.items()
        for i, ports in enumerate(held)
    ]
    timings = []
    for ns, held in list(spread.items())[:200]:
        started = time.perf_counter()
        spec_hash(build_gateway_ingress_policy(ns, [p for ports in held for p in ports], "v", GATEWAY_LABELS))
        timings.append(time.perf_counter() - started)
    started = time.perf_counter()
    for ns, held in spread.items():
        spec_hash(build_gateway_ingress_policy(ns, [p for ports in held for p in ports], "v", GATEWAY_LABELS))
    all_namespaces = time.perf_counter() - started
    return {
        "namespace_objects": len(per_namespace),
        "namespace_bytes": sum(map(stored_bytes, per_namespace)),
        "namespace_largest": max(map(stored_bytes, per_namespace)),
        "endpoint_objects": len(per_endpoint),
        "endpoint_bytes": sum(map(stored_bytes, per_endpoint)),
        "reconcile_median_us": statistics.median(timings) * 1e6,
        "all_namespaces_ms": all_namespaces * 1e3,
    }


def apply_rate(count: int, ports_per_policy: int) -> float:
    """Server-side applies per second of `count` policies into a private testbed (one kubectl apply of a List
    would hide the per-object cost; the operator applies one object per request, so this does too, through
    the kubernetes client)."""
    from kubernetes import client, config

    root = pathlib.Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="vpcep-bench-ingress-") as work:
        env = {**os.environ, "VPCEP_TESTBED_DIR": work}
        subprocess.run([str(root / "hack" / "testbed"), "up"], env=env, check=True, capture_output=True)
        try:
            api = config.new_client_from_config(config_file=f"{work}/kubeconfig")
            client.CoreV1Api(api).create_namespace({"metadata": {"name": "vpcep-system"}})
            custom = client.CustomObjectsApi(api)
            started = time.perf_counter()
            for index in range(count):
                ports = range(
                    FIRST_PORT + index * ports_per_policy, FIRST_PORT + (index + 1) * ports_per_policy
                )
                body = build_gateway_ingress_policy(f"team-{index}", ports, "vpcep-system", GATEWAY_LABELS)
                custom.patch_namespaced_custom_object(
                    "networking.k8s.io", "v1", "vpcep-system", "networkpolicies", body["metadata"]["name"],
                    body, field_manager="bench", force=True,
                    _content_type="application/apply-patch+yaml",
                )  # fmt: skip
            return count / (time.perf_counter() - started)
        finally:
            subprocess.run(
                [str(root / "hack" / "testbed"), "down", "--purge"], env=env, check=False, capture_output=True
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--endpoints", type=int, default=10_000)
    parser.add_argument("--namespaces", type=int, default=2_000)
    parser.add_argument("--apply", type=int, default=0, help="also apply this many policies to a testbed")
    args = parser.parse_args()
    for round_robin in (False, True):
        figures = measure(args.endpoints, args.namespaces, round_robin)
        print(
            f"{args.endpoints} endpoints / {args.namespaces} namespaces, "
            f"{'round-robin' if round_robin else 'namespace by namespace'} ports:\n"
            f"  per namespace: {figures['namespace_objects']:.0f} objects, "
            f"{figures['namespace_bytes'] / 1e6:.2f} MB, largest {figures['namespace_largest']:.0f} B\n"
            f"  per endpoint:  {figures['endpoint_objects']:.0f} objects, "
            f"{figures['endpoint_bytes'] / 1e6:.2f} MB\n"
            f"  one namespace's reconcile (build + hash): median {figures['reconcile_median_us']:.0f} us; "
            f"all namespaces: {figures['all_namespaces_ms']:.0f} ms"
        )
    if args.apply:
        per_namespace_ports = max(1, args.endpoints // args.namespaces)
        print(f"server-side applies/s, {args.apply} policies of {per_namespace_ports} port(s): "
              f"{apply_rate(args.apply, per_namespace_ports):.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
