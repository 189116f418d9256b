"""Validating admission (kopf `on.validate`): the domain's checks, answered before objects are stored.

Over quota (R9, R22, R49 Whitelists), not permitted (R13), service not found (R15), deleting a service with
Accepted/Creating endpoints (R7), tenants touching system services (R8), malformed specs (R3, R12). Every rule
is enforced by the reconcilers too, so the webhook being off changes when a user hears "no", never whether.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import kopf
from pydantic import BaseModel, ValidationError

from vpcep.api.endpoint import EndpointSpec
from vpcep.api.endpoint_service import BackendKind, EndpointServiceSpec
from vpcep.api.whitelist import WhitelistSpec
from vpcep.config import OperatorConfig
from vpcep.controllers.context import Operator
from vpcep.controllers.whitelist import account_whitelists, permitting_whitelists
from vpcep.domain.endpoint import EndpointAdmission, check_endpoint_admission
from vpcep.domain.facts import Refusal
from vpcep.domain.lookup import lookup_service
from vpcep.domain.service import Operation, ServiceAdmission, check_service_admission
from vpcep.domain.validation import whitelist_spec_problems
from vpcep.domain.whitelist import check_whitelist_account, check_whitelist_quota
from vpcep.handlers import metrics
from vpcep.k8s.client import ApiError
from vpcep.k8s.resources import POD, SERVICE
from vpcep.state.backends import admission_refusal
from vpcep.state.records import SYSTEM_LABEL

GROUP, VERSION = "vpcep.io", "v1alpha1"
PRIVILEGED_GROUPS = frozenset({"system:masters"})


@dataclass
class OperatorHolder:
    """Admission handlers run in kopf's webhook server; they reach the operator's caches through this."""

    operator: Operator | None = None


HOLDER = OperatorHolder()


def configure(settings: kopf.OperatorSettings, config: OperatorConfig) -> None:
    hook = config.webhook
    if not hook.enabled:
        return
    settings.admission.server = kopf.WebhookServer(
        addr=hook.address,
        port=hook.port,
        host=hook.host or hook.address,
        certfile=hook.certFile,
        pkeyfile=hook.keyFile,
        cafile=hook.caFile,
    )
    if hook.managedConfiguration:
        settings.admission.managed = hook.managedConfiguration


def _refuse(refusal: Refusal | None) -> None:
    if refusal is not None:
        code = 403 if refusal.reason.value != "InvalidSpec" else 422
        raise metrics.Denied(refusal.reason.value, refusal.message, code=code)


def _parse(model: type[BaseModel], kind: str, raw: Any) -> Any:
    try:
        return model.model_validate(raw or {})
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        raise kopf.AdmissionError(f"{kind}: spec.{where}: {first.get('msg')}", code=422) from None


async def _refuse_backend(rt: Operator, namespace: str, name: str, spec: EndpointServiceSpec) -> None:
    """R45: a backend the provider does not own is refused before the service exists (the backend cannot
    change later, R2)."""
    kind = spec.backend.kind
    try:
        body = await rt.api.get(SERVICE if kind is BackendKind.SERVICE else POD, namespace, spec.backend.name)
    except ApiError:
        return  # cannot look now: the reconcile judges the backend (R45 holds either way)
    refusal = admission_refusal(
        kind, body, selectorless_allowed=namespace in rt.config.selectorlessBackendNamespaces
    )
    if refusal is not None:
        raise metrics.Denied(
            refusal.reason.value,
            f"EndpointService {namespace}/{name}: spec.backend: {refusal.message}",
            code=403,
        )


def _operator() -> Operator:
    if HOLDER.operator is None or not HOLDER.operator.primed:
        raise kopf.AdmissionError("vpcep-operator is starting; try again in a few seconds", code=503)
    return HOLDER.operator


def is_privileged(userinfo: dict[str, Any] | None, config: OperatorConfig) -> bool:
    """The operator itself and cluster admins may manage system services (R8)."""
    info = userinfo or {}
    groups = set(info.get("groups") or [])
    username = info.get("username", "")
    own_account = f"system:serviceaccount:{config.namespace}:{config.serviceAccount}"
    return bool(groups & PRIVILEGED_GROUPS) or username in (own_account, *config.privilegedUsers)


def in_scope(config: OperatorConfig) -> Any:
    """kopf `when=` filter: a scoped operator judges nothing outside the namespaces it serves (kopf then
    allows the request; docs/operator.md)."""
    served = set(config.served_namespaces()) if config.scoped else None

    def served_namespace(**kwargs: Any) -> bool:
        return served is None or kwargs.get("namespace") in served

    return served_namespace


def register(config: OperatorConfig) -> None:
    if not config.webhook.enabled:
        return
    served = in_scope(config)

    @kopf.on.validate(
        GROUP,
        VERSION,
        "endpointservices",
        id="validate-endpoint-service",
        operations=["CREATE", "UPDATE", "DELETE"],
        when=served,
    )
    @metrics.observe_admission("EndpointService")
    async def validate_service(**kwargs: Any) -> None:
        operation, namespace, name = kwargs["operation"], kwargs["namespace"], kwargs["name"]
        old, new, userinfo = kwargs.get("old"), kwargs.get("new"), kwargs.get("userinfo")
        rt = _operator()
        account = rt.observed.account(namespace)
        spec = (
            _parse(EndpointServiceSpec, f"EndpointService {namespace}/{name}", new.get("spec"))
            if new
            else None
        )
        old_spec = None
        if old is not None:
            try:
                old_spec = EndpointServiceSpec.model_validate(old.get("spec") or {})
            except ValidationError:
                old_spec = None
        labelled = any(
            ((body or {}).get("metadata", {}).get("labels") or {}).get(SYSTEM_LABEL) == "true"
            for body in (old, new)
        )
        record = rt.observed.service(namespace, name)
        endpoints = (
            tuple(rt.observed.endpoint_view(e) for e in rt.observed.endpoints_of_service(record))
            if record is not None and operation == "DELETE"
            else ()
        )
        used = sum(
            1
            for s in rt.observed.account_services(account)
            if not s.meta.deleting and (s.meta.namespace, s.meta.name) != (namespace, name)
        )
        system = labelled or namespace == config.namespace
        if operation == "CREATE" and spec is not None and not system:
            await _refuse_backend(rt, namespace, name, spec)
        _refuse(
            check_service_admission(
                ServiceAdmission(
                    operation=Operation(operation),
                    namespace=namespace,
                    name=name,
                    account=account,
                    spec=spec,
                    old_spec=old_spec,
                    system=system,
                    privileged=is_privileged(userinfo, config),
                    quota_used=used,
                    quota_limit=rt.quota.service_limit(account),
                    endpoints=endpoints,
                    account_problem=rt.observed.account_problem(namespace),
                )
            )
        )

    @kopf.on.validate(
        GROUP, VERSION, "endpoints", id="validate-endpoint", operations=["CREATE", "UPDATE"], when=served
    )
    @metrics.observe_admission("Endpoint")
    async def validate_endpoint(**kwargs: Any) -> None:
        operation, namespace, name = kwargs["operation"], kwargs["namespace"], kwargs["name"]
        old, new = kwargs.get("old"), kwargs.get("new")
        rt = _operator()
        account = rt.observed.account(namespace)
        spec: EndpointSpec = _parse(EndpointSpec, f"Endpoint {namespace}/{name}", (new or {}).get("spec"))
        old_spec = None
        if old is not None:
            try:
                old_spec = EndpointSpec.model_validate(old.get("spec") or {})
            except ValidationError:
                old_spec = None
        service = None
        if spec.serviceName is not None:
            record = rt.observed.service_by_published_name(spec.serviceName)
            view = rt.observed.service_view(record) if record is not None else None
            service = lookup_service(spec, config.region, {spec.serviceName: view} if view else {}, {})
        elif spec.cloudService is not None:
            record = rt.observed.service(config.namespace, spec.cloudService)
            view = rt.observed.service_view(record) if record is not None else None
            service = lookup_service(spec, config.region, {}, {spec.cloudService: view} if view else {})
        used = sum(
            1
            for e in rt.observed.account_endpoints(account)
            if not e.meta.deleting and (e.meta.namespace, e.meta.name) != (namespace, name)
        )
        _refuse(
            check_endpoint_admission(
                EndpointAdmission(
                    operation=Operation(operation),
                    namespace=namespace,
                    name=name,
                    account=account,
                    region=config.region,
                    spec=spec,
                    old_spec=old_spec,
                    service=service,
                    whitelists=permitting_whitelists(rt, service.namespace, service.name) if service else (),
                    quota_used=used,
                    quota_limit=rt.quota.endpoint_limit(account),
                    account_problem=rt.observed.account_problem(namespace),
                )
            )
        )

    @kopf.on.validate(
        GROUP, VERSION, "whitelists", id="validate-whitelist", operations=["CREATE", "UPDATE"], when=served
    )
    @metrics.observe_admission("Whitelist")
    async def validate_whitelist(**kwargs: Any) -> None:
        namespace, name, new = kwargs["namespace"], kwargs["name"], kwargs.get("new")
        spec: WhitelistSpec = _parse(WhitelistSpec, f"Whitelist {namespace}/{name}", (new or {}).get("spec"))
        problems = whitelist_spec_problems(spec)
        if problems:
            _refuse(
                problems[0].model_copy(
                    update={"message": f"Whitelist {namespace}/{name}: {problems[0].message}"}
                )
            )
        if kwargs["operation"] == "CREATE":  # R48, R49
            rt = _operator()
            _refuse(check_whitelist_account(namespace, name, rt.observed.account_problem(namespace)))
            account = rt.observed.account(namespace)
            used = sum(
                1
                for record in account_whitelists(rt, account)
                if (record.meta.namespace, record.meta.name) != (namespace, name)
            )
            _refuse(check_whitelist_quota(namespace, name, account, used, rt.quota.whitelist_limit(account)))
