"""`vpcep-operator`: run the operator against the current KUBECONFIG (or in-cluster account), all namespaces
(or only those given with --watch-namespace).

main() only reads the configuration and registers kopf's start-up, clean-up, login and admission handlers
(vpcep.handlers.operator); the start-up handler runs the controllers (vpcep.controllers.operator).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import pathlib
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from vpcep import __version__, log_levels
from vpcep.config import OperatorConfig, load_config
from vpcep.runtime.heap import hold_collection


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vpcep-operator", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--config", type=pathlib.Path, help="OperatorConfig YAML file (docs/operator.md)")
    parser.add_argument("--namespace", help="operator namespace (routes, gateways, cloud services)")
    parser.add_argument("--region", help="region name, the first label of every service name")
    parser.add_argument(
        "--watch-namespace",
        action="append",
        metavar="NS",
        help="serve only this namespace (repeatable; the operator namespace is always served); "
        "default: all namespaces",
    )
    parser.add_argument("--webhook", action="store_true", help="serve the validating admission webhook")
    parser.add_argument("--webhook-address", help="address the webhook listens on")
    parser.add_argument("--webhook-port", type=int, help="port the webhook listens on")
    parser.add_argument("--webhook-host", help="host or IP the API server dials (certificate SAN)")
    parser.add_argument("--webhook-cert", help="PEM certificate file")
    parser.add_argument("--webhook-key", help="PEM private key file")
    parser.add_argument("--webhook-ca", help="PEM CA bundle the API server verifies the webhook with")
    parser.add_argument(
        "--webhook-managed",
        metavar="NAME",
        help="let the operator create and keep a ValidatingWebhookConfiguration NAME (local runs)",
    )
    parser.add_argument(
        "--liveness", metavar="URL", help="liveness endpoint, e.g. http://0.0.0.0:8080/healthz"
    )
    parser.add_argument(
        "--readiness",
        metavar="URL",
        help="readiness endpoint, 200 once the caches are primed, e.g. http://0.0.0.0:8082/readyz",
    )
    parser.add_argument(
        "--metrics-port", type=int, help="serve Prometheus /metrics on this port (docs/observability.md)"
    )
    parser.add_argument("--metrics-address", default="0.0.0.0", help="address /metrics listens on")
    parser.add_argument("--verbose", action="store_true")
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> OperatorConfig:
    config = load_config(args.config)
    data: dict[str, Any] = config.model_dump(mode="json")
    if args.namespace:
        data["namespace"] = args.namespace
    if args.region:
        data["region"] = args.region
    if args.watch_namespace:
        data["watchNamespaces"] = args.watch_namespace  # flags replace the file's list, as for other keys
    webhook = data["webhook"]
    flags = {
        "address": args.webhook_address,
        "port": args.webhook_port,
        "host": args.webhook_host,
        "certFile": args.webhook_cert,
        "keyFile": args.webhook_key,
        "caFile": args.webhook_ca,
        "managedConfiguration": args.webhook_managed,
    }
    webhook.update({key: value for key, value in flags.items() if value is not None})
    if args.webhook or args.webhook_managed:
        webhook["enabled"] = True
    return OperatorConfig.model_validate(data)


def name_an_unnamed_user() -> None:
    """kopf names the process `<user>@<host>` with getpass.getuser() (unless POD_ID is set, as the chart
    does), which fails for a UID with no passwd entry (OpenShift's restricted profile assigns random UIDs):
    give such a UID a name through USER, the first thing getuser() reads."""
    try:
        getpass.getuser()
    except (KeyError, OSError):  # KeyError up to Python 3.12, OSError from 3.13
        os.environ["USER"] = f"uid-{os.getuid()}"


def main(argv: Sequence[str] | None = None) -> int:
    hold_collection()  # until the caches are primed: a restart's CPU is then the work, not the collector's
    args = parse_args(argv)
    try:
        config = build_config(args)
    except (ValidationError, ValueError, OSError) as error:
        print(f"vpcep-operator: invalid configuration: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    log_levels.install()  # a refused user request is logged at INFO with its reason, not as an operator fault
    if not args.verbose:  # kopf logs every handler call at INFO: thousands of lines at scale
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    # kopf imports the official client, when installed, only to recognise its model classes; the operator
    # talks to the API through vpcep.k8s (aiohttp): not importing it saves ~13 MB and ~1.5 s of every start.
    sys.modules.setdefault("kubernetes", None)  # type: ignore[arg-type]
    import kopf

    from vpcep.handlers import readiness  # imported late: kopf handlers register on import
    from vpcep.handlers.operator import register

    name_an_unnamed_user()
    readiness.register(args.readiness)  # first, so that it answers while the other start-up activities run
    register(config)
    if args.metrics_port:
        from vpcep.handlers.metrics import serve_metrics

        serve_metrics(args.metrics_port, args.metrics_address)
    if config.scoped:
        kopf.run(namespaces=config.served_namespaces(), standalone=True, liveness_endpoint=args.liveness)
    else:
        kopf.run(clusterwide=True, standalone=True, liveness_endpoint=args.liveness)
    return 0


if __name__ == "__main__":
    sys.exit(main())
