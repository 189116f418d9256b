"""OperatorConfig: everything a cluster operator tunes, read from one YAML file (the Helm chart renders it).

The shape is kept flat and documented in docs/operator.md; command-line flags override the few settings
that differ between a local run and an in-cluster one (namespace, webhook listener).
"""

from __future__ import annotations

import pathlib
import re

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vpcep.api.denied_addresses import Network, parse_networks
from vpcep.api.endpoint_service import BackendKind, PortMapping, ServiceType

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class ConfigModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AccountQuota(ConfigModel):
    """Limits of one account; the default applies to every account without an override (R9, R22, R49). An
    override replaces only the limits it sets: the others stay at the default's."""

    services: int = Field(default=20, ge=0, description="EndpointServices per account (R9).")
    endpoints: int = Field(default=50, ge=0, description="Endpoints per account (R22).")
    gatewayPorts: int = Field(
        default=200,
        ge=0,
        description="Gateway ports the account's endpoints hold, one per port mapping (R49): the shared "
        "gatewayPorts range is not taken by a few accounts.",
    )
    whitelists: int = Field(default=50, ge=0, description="Whitelist objects per account (R49).")


class Quotas(ConfigModel):
    default: AccountQuota = Field(default_factory=AccountQuota)
    overrides: dict[str, AccountQuota] = Field(
        default_factory=dict, description="account name -> limits replacing the default for that account."
    )

    def for_account(self, account: str) -> AccountQuota:
        """The default's limits, with those the account's override sets (an override of `endpoints` alone
        keeps the default's `services`, `gatewayPorts` and `whitelists`)."""
        override = self.overrides.get(account)
        if override is None:
            return self.default
        return self.default.model_copy(
            update={name: getattr(override, name) for name in override.model_fields_set}
        )


class PortRange(ConfigModel):
    """Gateway listen ports handed out to endpoint port mappings (one port per mapping, never shared)."""

    first: int = Field(default=20000, ge=1024, le=65535)
    last: int = Field(default=32767, ge=1024, le=65535)

    @model_validator(mode="after")
    def _ordered(self) -> PortRange:
        if self.last < self.first:
            raise ValueError(f"gatewayPorts.last ({self.last}) must be >= gatewayPorts.first ({self.first})")
        return self


class CloudBackend(ConfigModel):
    kind: BackendKind = BackendKind.SERVICE
    name: str = Field(min_length=1, description="Service or Pod name in `namespace`.")
    namespace: str | None = Field(
        default=None,
        description="Where the backend lives; defaults to the operator namespace. The service itself "
        "is always "
        "created in the operator namespace (R37).",
    )


class CloudService(ConfigModel):
    """A system ("cloud") service published by the operator in its own namespace for every account (R37)."""

    name: str = Field(description="Short name consumers put in Endpoint spec.cloudService, e.g. dns.")
    type: ServiceType = ServiceType.INTERFACE
    backend: CloudBackend
    ports: list[PortMapping] = Field(min_length=1, max_length=50)
    description: str = ""
    egressCIDRs: list[str] = Field(
        default_factory=list,
        description="Gateway-type only: destinations a consumer namespace may reach (R38); empty means the "
        "backend's address.",
    )

    @field_validator("name")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not DNS_LABEL.match(value):
            raise ValueError(f"cloudServices[].name {value!r} must be a DNS label (lower case, digits, '-')")
        return value


def _default_cloud_services() -> list[CloudService]:
    """Only the cluster DNS, which every conformant cluster runs: a default service without a backend would be
    Failed/BackendNotFound on every install (Gateway-type examples: charts/vpcep-operator/values.yaml)."""
    return [
        CloudService(
            name="dns",
            type=ServiceType.INTERFACE,
            backend=CloudBackend(kind=BackendKind.SERVICE, name="kube-dns", namespace="kube-system"),
            ports=[PortMapping(protocol="TCP", serverPort=53, clientPort=53)],
            description="Cluster DNS over TCP (R37).",
        ),
    ]


class WebhookConfig(ConfigModel):
    """Where the admission webhook listens; off unless enabled (the operator enforces every rule anyway)."""

    enabled: bool = False
    address: str = "0.0.0.0"
    port: int = Field(default=9443, ge=1, le=65535)
    host: str | None = Field(
        default=None, description="Host name or IP the API server dials; defaults to address."
    )
    certFile: str | None = None
    keyFile: str | None = None
    caFile: str | None = None
    managedConfiguration: str | None = Field(
        default=None,
        description="Name of a ValidatingWebhookConfiguration kopf creates and keeps current "
        "(local runs only; "
        "in a cluster the chart owns it).",
    )


class GatewayChannelConfig(ConfigModel):
    """The gateway channel (R45, docs/decisions.md "Gateways and the API server"): an HTTPS port on every
    replica through which gateway agents reach the API server, for their route ConfigMaps and their status
    only (vpcep.domain.gateway_channel), so that a gateway pod's egress need not admit the API server. Each
    request goes on with the agent's own token. Off unless enabled."""

    enabled: bool = False
    address: str = "0.0.0.0"
    port: int = Field(default=9444, ge=1, le=65535)
    certFile: str | None = Field(default=None, description="PEM certificate the agents verify it by.")
    keyFile: str | None = None

    @model_validator(mode="after")
    def _served_over_tls(self) -> GatewayChannelConfig:
        if self.enabled and not (self.certFile and self.keyFile):
            raise ValueError("gatewayChannel.enabled needs gatewayChannel.certFile and .keyFile (HTTPS)")
        return self


class LeaderElectionConfig(ConfigModel):
    """Replicas elect one leader on a coordination.k8s.io Lease in the operator namespace (R50): it alone
    reconciles and writes; every replica primes its caches and serves the admission webhook. Defaults: a
    killed leader is replaced within about leaseDuration + 2 x retryPeriod (14 s)."""

    enabled: bool = Field(default=True, description="Off: this process reconciles without a Lease (alone).")
    leaseName: str = Field(default="vpcep-operator", description="The Lease, in `namespace`.")
    leaseDurationSeconds: float = Field(
        default=10.0, gt=0, description="A standby takes the lease this long after it last saw it renewed."
    )
    renewDeadlineSeconds: float = Field(
        default=7.0, gt=0, description="A leader that could not renew for this long stops reconciling."
    )
    retryPeriodSeconds: float = Field(
        default=2.0, gt=0, description="How often the leader renews and standbys poll."
    )

    @field_validator("leaseName")
    @classmethod
    def _lease_name(cls, value: str) -> str:
        if not DNS_LABEL.match(value):
            raise ValueError(f"leaderElection.leaseName {value!r} must be a DNS label")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> LeaderElectionConfig:
        if not self.retryPeriodSeconds < self.renewDeadlineSeconds < self.leaseDurationSeconds:
            raise ValueError(
                "leaderElection: needs retryPeriodSeconds < renewDeadlineSeconds < leaseDurationSeconds "
                "(a leader must stop before a standby may take over)"
            )
        return self


class OperatorConfig(ConfigModel):
    namespace: str = Field(
        default="vpcep-system", description="Operator namespace: routes, gateways, cloud services."
    )
    region: str = Field(default="local-1", description="First label of every service name (R5, R40).")
    clusterDomain: str = Field(
        default="cluster.local",
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        description="The cluster's DNS domain (kubelet's --cluster-domain): endpoints' status.dnsName and "
        "headless backends' names end in it.",
    )
    quotas: Quotas = Field(default_factory=Quotas)
    maxConnectionsPerEndpoint: int = Field(
        default=3000, ge=1, description="Per-endpoint connection cap (R21)."
    )
    gatewayPorts: PortRange = Field(default_factory=PortRange)
    gatewayHeartbeatTimeoutSeconds: float = Field(
        default=30.0, gt=0, description="A gateway whose last heartbeat is older than this is not ready."
    )
    gatewayPodLabels: dict[str, str] = Field(
        default_factory=lambda: {"app.kubernetes.io/name": "vpcep-gateway"},
        description="Labels of the gateway pods, admitted by the provider NetworkPolicies (R31).",
    )
    # R47, R52: which gateway status reports are believed (vpcep.domain.fleet_trust, vpcep.state.fleet).
    verifyGatewayPods: bool = Field(
        default=False,
        description="Believe a gateway status only when a Running, Ready pod of `gatewayDeployment` (found "
        "by `gatewayPodLabels` in the operator namespace) reports it, at that pod's IP (R47); a pod that is "
        "not Ready is withdrawn whatever its heartbeat says. The chart turns it on; off, any status "
        "ConfigMap in the operator namespace counts (a development setting, for gateways run outside a "
        "Deployment).",
    )
    gatewayDeployment: str = Field(
        default="vpcep-gateway",
        description="Name of the gateway Deployment (the chart's: <release>-gateway); its ReplicaSets' pods "
        "are the only gateways believed when verifyGatewayPods is on.",
    )
    gatewayIngressPolicy: bool = Field(
        default=True,
        description="Write, in the operator namespace, one NetworkPolicy per consumer namespace admitting "
        "its pods to its endpoints' gateway ports, and accept no endpoint before its ports are admitted "
        "(R42). "
        "Goes with the chart's default-deny ingress policy for the gateway pods.",
    )
    networkPolicy: bool = Field(default=True, description="Create provider-side NetworkPolicies (R31).")
    selectorlessBackendNamespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces whose EndpointServices may name a Service without a selector as backend (its "
        "Endpoints are written by hand, so they could point anywhere): the cluster admin vouches for them "
        "(R45). Elsewhere such a backend is refused with BackendWithoutSelector.",
    )
    deniedBackendCIDRs: list[str] = Field(
        default_factory=list,
        description="CIDRs no gateway may dial besides the built-in link-local and cloud metadata ranges and "
        "the API server's addresses (e.g. node or management networks): a backend resolving into one is "
        "refused with BackendAddressDenied (R45). The chart passes gateway.egressPolicy.deniedCIDRs.",
    )
    requireAccountLabel: bool = Field(
        default=False,
        description="Namespaces without the vpcep.io/account label have no account: their EndpointServices "
        "and Endpoints fail with AccountUnclear (R48). Off: an unlabelled namespace is the account named "
        "like it.",
    )
    cloudServices: list[CloudService] = Field(default_factory=_default_cloud_services)
    webhook: WebhookConfig = Field(default_factory=WebhookConfig)
    gatewayChannel: GatewayChannelConfig = Field(default_factory=GatewayChannelConfig)
    serviceAccount: str = Field(
        default="vpcep-operator",
        description="The operator's own ServiceAccount, in `namespace` (the chart's: <release>-operator): "
        "its writes to the system services are its own (R8, R51).",
    )
    privilegedUsers: list[str] = Field(
        default_factory=list,
        description="Users besides system:masters and the operator's own service account "
        "(system:serviceaccount:<namespace>:<serviceAccount>) that may manage system services (R8).",
    )
    leaderElection: LeaderElectionConfig = Field(default_factory=LeaderElectionConfig)
    workers: int = Field(default=8, ge=1, le=256, description="Objects reconciled concurrently.")
    apiConcurrency: int = Field(default=16, ge=1, le=256, description="API requests in flight at once.")
    watchNamespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces the operator serves besides its own; empty means every namespace. Endpoints, "
        "EndpointServices and their backends outside them are not served (docs/operator.md).",
    )

    @field_validator("region", "namespace")
    @classmethod
    def _label(cls, value: str) -> str:
        if not DNS_LABEL.match(value):
            raise ValueError(f"{value!r} must be a DNS label (lower case letters, digits and '-')")
        return value

    @field_validator("deniedBackendCIDRs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        parse_networks(value)  # ValueError names the entry
        return value

    @property
    def denied_networks(self) -> tuple[Network, ...]:
        return parse_networks(self.deniedBackendCIDRs)

    @field_validator("watchNamespaces")
    @classmethod
    def _namespace_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not DNS_LABEL.match(name):
                raise ValueError(f"watchNamespaces: {name!r} is not a namespace name (a DNS label)")
        return sorted(set(value))

    @property
    def scoped(self) -> bool:
        """True when the operator serves only `watchNamespaces` (and its own namespace)."""
        return bool(self.watchNamespaces)

    def served_namespaces(self) -> list[str]:
        """The namespaces watched when scoped: the configured ones plus the operator's own (routes, gateway
        status and cloud services live there).
        """
        return sorted({*self.watchNamespaces, self.namespace})

    def backend_namespaces(self) -> list[str]:
        """Where backends may live when scoped: the served namespaces and those of cloud-service backends
        (e.g. kube-system for dns, R37).
        """
        cloud = {service.backend.namespace or self.namespace for service in self.cloudServices}
        return sorted({*self.served_namespaces(), *cloud})

    @model_validator(mode="after")
    def _unique_cloud_services(self) -> OperatorConfig:
        names = [service.name for service in self.cloudServices]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"cloudServices: duplicate name(s) {', '.join(duplicates)}")
        return self


def load_config(path: pathlib.Path | None) -> OperatorConfig:
    """Read the YAML file (missing file = all defaults); errors name the field, as pydantic reports them."""
    if path is None:
        return OperatorConfig()
    loaded = yaml.safe_load(path.read_text()) or {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: the operator configuration must be a YAML mapping")
    return OperatorConfig.model_validate(loaded)
