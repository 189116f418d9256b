"""R21 across gateway replicas (R49): an endpoint's connection cap holds for the endpoint as a whole.

Each gateway enforces its share of the cap alone (HAProxy counts only its own sessions), so the operator
writes each route's per-gateway cap as ⌈cap ÷ gateways⌉ and rewrites the routes when that number changes.
The gateways counted are the ready ones and the draining ones (R52): a draining gateway holds up to its share
of sessions until it stops, and counting it makes a drain rewrite no route. Accuracy (docs/security.md): the
endpoint's total never exceeds gateways * ⌈cap ÷ gateways⌉ <= cap + gateways - 1; a client whose connections
all land on one gateway gets that gateway's share only, so with uneven spreading refusals start below cap.
"""

from __future__ import annotations

import math


def per_gateway_cap(cap: int, ready_gateways: int) -> int:
    """The share of the endpoint's cap each gateway enforces; with no ready gateway (routes written ahead
    of the first report) the first gateway to come up gets the whole cap until the fleet is known."""
    return math.ceil(cap / max(ready_gateways, 1))
