"""The kopf side: what kopf still does for the operator -- start-up and clean-up, login, the admission
webhook server (vpcep.handlers.admission) -- and nothing else. kopf watches no kind: every cache is fed by the
operator's own watches (vpcep.controllers.sources), which kopf's admission server does not need (it serves the
kinds its `on.validate` handlers name, watched or not).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from dataclasses import replace
from typing import Any

import kopf

from vpcep.config import OperatorConfig
from vpcep.controllers.context import Operator
from vpcep.controllers.operator import build_operator, run_operator
from vpcep.handlers import admission, gateway_channel, metrics
from vpcep.k8s.client import KubeApi
from vpcep.k8s.events import EventRecorder
from vpcep.runtime.leader import ElectionTiming, KubeLeaseStore, LeaderElector

logger = logging.getLogger(__name__)
LEASE_API_CONCURRENCY = 2  # the lease has a client of its own: renewals never queue behind a storm of writes


def login() -> kopf.ConnectionInfo:
    info = kopf.login_with_service_account(settings=kopf.OperatorSettings())
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    if info is not None and host and port:
        # In a pod, the API server is where kubelet says (as client-go and the gateway's client find it):
        # kopf assumes https://kubernetes.default.svc, which needs the cluster DNS (not hostNetwork pods').
        server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
        info = replace(info, server=server)
    info = info or kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
    if info is None:
        raise kopf.LoginError("no in-cluster service account and no KUBECONFIG/~/.kube/config to log in with")
    return info


def identity() -> str:
    """This replica's name in the Lease: its pod's (downward API, the chart's POD_NAME), else host and pid."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


def build_elector(config: OperatorConfig) -> LeaderElector:
    election = config.leaderElection
    store = KubeLeaseStore(
        KubeApi(login(), concurrency=LEASE_API_CONCURRENCY), config.namespace, election.leaseName
    )
    timing = ElectionTiming(
        election.leaseDurationSeconds, election.renewDeadlineSeconds, election.retryPeriodSeconds
    )
    return LeaderElector(store, identity(), timing, on_change=metrics.observe_leading)


async def _run(operator: Operator, elector: LeaderElector | None, started: float) -> None:
    """Until cancelled. Leadership lost (R50) or a failure: the workers are stopped already; end the process
    (kopf's clean-up runs), and the pod's restart brings it back as a standby with fresh state."""
    try:
        await run_operator(operator, elector, started)
        logger.error("vpcep: leadership lost; stopping so that this replica restarts as a standby")
    except Exception:
        logger.exception("vpcep: the operator failed; stopping so that this replica restarts")
    os.kill(os.getpid(), signal.SIGTERM)


def register(config: OperatorConfig) -> None:
    """Register the start-up, clean-up, login and admission handlers with kopf (once, before kopf runs)."""

    @kopf.on.startup()
    async def start(**kwargs: Any) -> None:
        started = asyncio.get_running_loop().time()
        settings: kopf.OperatorSettings = kwargs["settings"]
        memo: Any = kwargs["memo"]
        settings.posting.level = logging.WARNING  # the operator posts its own Events (R39)
        settings.peering.standalone = True
        admission.configure(settings, config)

        api = KubeApi(login(), concurrency=config.apiConcurrency)
        recorder = EventRecorder(api, instance=f"{socket.gethostname()}-{os.getpid()}")
        operator = build_operator(
            config, api, recorder, observe=metrics.reconciling, on_wait=metrics.observe_queue_wait
        )
        memo.operator = operator
        metrics.watch_operator(operator)
        admission.HOLDER.operator = operator
        recorder.start()
        memo.elector = build_elector(config) if config.leaderElection.enabled else None
        if memo.elector is None:
            metrics.observe_leading(True)  # reconciles alone
        memo.tasks = [asyncio.create_task(_run(operator, memo.elector, started), name="vpcep operator")]

    @kopf.on.cleanup()
    async def stop(**kwargs: Any) -> None:
        memo = kwargs["memo"]
        operator = getattr(memo, "operator", None)
        if operator is None:
            return
        for task in getattr(memo, "tasks", []):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await operator.recorder.stop()
        await operator.api.close()
        elector = getattr(memo, "elector", None)
        if elector is not None:
            await elector.store.api.close()

    @kopf.on.login()
    def authenticate(**_: Any) -> kopf.ConnectionInfo:
        return login()

    admission.register(config)
    gateway_channel.register(config.gatewayChannel, config.namespace, login)
