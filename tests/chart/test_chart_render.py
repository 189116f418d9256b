"""The chart renders valid Kubernetes objects with its defaults and with the variations people use."""

from __future__ import annotations

import base64
import pathlib
import re
import subprocess
import tempfile
import time
from typing import Any

import kubernetes_validate
import pytest
import yaml
from chart_rendering import NAMESPACE, REPO, Rendered, RenderError, operator_config, render

import vpcep

KUBERNETES_VERSION = "1.30.0"
# Kinds of other projects (cert-manager) have no schema in kubernetes-validate; checked by hand below.
FOREIGN_GROUPS = ("cert-manager.io/",)

VARIATIONS = {
    "defaults": [],
    "webhook-off": ["webhook.enabled=false"],
    "cert-manager": ["webhook.certificate.source=cert-manager"],
    "cert-manager-issuer": [
        "webhook.certificate.source=cert-manager",
        "webhook.certificate.certManager.issuerRef.name=corp-ca",
        "webhook.certificate.certManager.issuerRef.kind=ClusterIssuer",
    ],
    "crds-off": ["crds.enabled=false"],
    "no-user-roles": ["rbac.userRoles=false"],
    "scoped-hard-spread": [
        "gateway.replicas=3",
        "gateway.antiAffinity=hard",
        "operator.logLevel=debug",
    ],
    "one-gateway": ["gateway.replicas=1"],
    "watch-namespaces": ["watchNamespaces[0]=team-a", "watchNamespaces[1]=team-b"],
    "tuned": [
        "region=eu-west-2",
        "maxConnectionsPerEndpoint=100",
        "quotas.default.services=5",
        "quotas.overrides.team-a.services=40",
        "quotas.overrides.team-a.endpoints=200",
        "networkPolicy.enabled=false",
        "image.tag=1.2.3",
        "imagePullSecrets[0].name=regcred",
        "operator.tolerations[0].key=dedicated",
        "operator.tolerations[0].operator=Exists",
    ],
}


@pytest.mark.parametrize("variation", sorted(VARIATIONS))
def test_every_rendered_object_is_valid_against_the_kubernetes_schemas(variation: str) -> None:
    rendered = render(*VARIATIONS[variation])
    assert rendered.objects
    for obj in rendered.objects:
        if obj["apiVersion"].startswith(FOREIGN_GROUPS):
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{obj['kind']} {obj['metadata'].get('name')}: {error.message} at {list(error.path)}")
        if obj["kind"] not in {
            "ClusterRole",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
            "ValidatingWebhookConfiguration",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
        }:
            assert obj["metadata"]["namespace"] in _namespaces_of(obj, variation), obj["metadata"]["name"]


def _namespaces_of(obj: dict[str, Any], variation: str) -> set[str]:
    """Everything lives in the release namespace, but a scoped operator's Roles: one per served namespace,
    read-only ones where cloud-service backends live (kube-system), and a read-only one for the API server's
    addresses in `default` (R45)."""
    name = obj["metadata"]["name"]
    if obj["kind"] in {"Role", "RoleBinding"} and name == "vpcep-operator-served":
        return {NAMESPACE, *VARIATION_NAMESPACES.get(variation, [])}
    if obj["kind"] in {"Role", "RoleBinding"} and name == "vpcep-operator-backends":
        return {"kube-system"}
    if obj["kind"] in {"Role", "RoleBinding"} and name == "vpcep-operator-api-server":
        return {"default"}
    return {NAMESPACE}


def _crd_files() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((REPO / "crds").glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def test_crds_are_those_of_the_repository_with_a_keep_policy(defaults: Rendered) -> None:
    expected = {doc["metadata"]["name"]: doc for doc in _crd_files()}
    assert expected, "crds/ holds no CRD"
    rendered = {crd["metadata"]["name"]: crd for crd in defaults.all("CustomResourceDefinition")}
    assert set(rendered) == set(expected)
    for name, crd in rendered.items():
        assert crd["spec"] == expected[name]["spec"], f"{name} differs from crds/"
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert crd["metadata"]["labels"]["app.kubernetes.io/part-of"] == "vpcep"


def test_crds_can_be_left_out_or_given_up_on_uninstall() -> None:
    assert not render("crds.enabled=false").all("CustomResourceDefinition")
    for crd in render("crds.keep=false").all("CustomResourceDefinition"):
        assert "helm.sh/resource-policy" not in crd["metadata"].get("annotations", {})


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    """The container running the program: the operator, or the gateway's agent (R47: HAProxy is beside it)."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    programs = [c for c in containers if c["args"][0] in ("operator", "gateway")]
    assert len(programs) == 1
    container: dict[str, Any] = programs[0]
    return container


def _assert_hardened(deployment: dict[str, Any]) -> None:
    """R36: non-root, read-only root filesystem, no privilege escalation, resources set: every container."""
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    for container in pod["containers"]:
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
        # No mount sits inside another (kubelet cannot create a mount point inside a read-only volume).
        paths = [mount["mountPath"] for mount in container["volumeMounts"]]
        assert not [(a, b) for a in paths for b in paths if a != b and b.startswith(a.rstrip("/") + "/")]
    writable = {
        mount["mountPath"] for mount in _container(deployment)["volumeMounts"] if not mount.get("readOnly")
    }
    assert "/tmp" in writable


def test_operator_runs_two_replicas_rolled_one_at_a_time_under_a_budget(defaults: Rendered) -> None:
    """R50: two replicas (one leads, both serve the webhook), a rollout that starts a new pod before an old
    one goes, a budget that keeps one through a drain, and each pod's name as its identity in the Lease."""
    deployment = defaults.one("Deployment", "vpcep-operator")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    budget = defaults.one("PodDisruptionBudget", "vpcep-operator")
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    container = _container(deployment)
    env = {item["name"]: item["valueFrom"]["fieldRef"]["fieldPath"] for item in container["env"]}
    assert env["POD_NAME"] == "metadata.name"
    # A replaced pod goes on serving the webhook while it leaves the Service's endpoints.
    assert "sleep" in " ".join(container["lifecycle"]["preStop"]["exec"]["command"])
    election = operator_config(defaults)["leaderElection"]
    assert election["leaseName"] == "vpcep-operator"
    assert (
        election["retryPeriodSeconds"] < election["renewDeadlineSeconds"] < election["leaseDurationSeconds"]
    )
    assert "vpcep-operator" not in render("operator.replicas=1").names("PodDisruptionBudget")


def test_operator_may_touch_only_its_own_lease_in_its_own_namespace(defaults: Rendered) -> None:
    """R36, R50: leases in the release namespace only -- create, and get/update of the one named Lease."""
    lease_rules = [
        (role["kind"], role["metadata"].get("namespace"), rule)
        for role in defaults.all("Role") + defaults.all("ClusterRole")
        for rule in role["rules"]
        if "coordination.k8s.io" in rule["apiGroups"]
    ]
    assert lease_rules == [
        (
            "Role",
            NAMESPACE,
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        ),
        (
            "Role",
            NAMESPACE,
            {
                "apiGroups": ["coordination.k8s.io"],
                "resources": ["leases"],
                "resourceNames": ["vpcep-operator"],
                "verbs": ["get", "update"],
            },
        ),
    ]


def test_operator_runs_with_probes_hardened_and_reads_the_rendered_config(defaults: Rendered) -> None:
    deployment = defaults.one("Deployment", "vpcep-operator")
    _assert_hardened(deployment)
    container = _container(deployment)
    assert container["image"] == f"vpcep-operator:{vpcep.__version__}"  # the chart's appVersion
    assert container["args"][0] == "operator"
    assert "--config=/etc/vpcep/config/config.yaml" in container["args"]
    assert "--verbose" not in container["args"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert f"--liveness=http://0.0.0.0:{ports['health']}/healthz" in container["args"]
    assert f"--readiness=http://0.0.0.0:{ports['ready']}/readyz" in container["args"]
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "vpcep-operator"


def test_operator_probes_judge_alive_ready_and_started_apart(defaults: Rendered) -> None:
    """Issue 18: liveness asks whether the process is alive (kopf's /healthz), readiness whether it can serve
    (/readyz: caches primed), and a start-up probe covers kopf's 60 s retry of a failed start-up activity
    several times over, so a transient start-up error is retried instead of killed."""
    container = _container(defaults.one("Deployment", "vpcep-operator"))
    startup, liveness, readiness = (container[p] for p in ("startupProbe", "livenessProbe", "readinessProbe"))
    assert startup["httpGet"] == liveness["httpGet"] == {"path": "/healthz", "port": "health"}
    assert readiness["httpGet"] == {"path": "/readyz", "port": "ready"}
    kopf_activity_retry = 60
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 3 * kopf_activity_retry
    assert "initialDelaySeconds" not in liveness  # the start-up probe holds it back instead
    env = {item["name"]: item["valueFrom"]["fieldRef"]["fieldPath"] for item in container["env"]}
    assert env["POD_ID"] == "metadata.name"  # kopf's identity without getpass.getuser() (arbitrary UIDs)


def test_operator_ports_that_collide_are_refused_naming_the_keys() -> None:
    with pytest.raises(RenderError, match=r"operator.healthPort \(8080\), operator.readinessPort \(9443\)"):
        render("operator.readinessPort=9443")


def test_a_config_change_restarts_the_operator() -> None:
    def checksum(*sets: str) -> str:
        deployment = render(*sets).one("Deployment", "vpcep-operator")
        value: str = deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        return value

    assert checksum() == checksum()
    assert checksum() != checksum("maxConnectionsPerEndpoint=10")


def test_debug_logging_makes_the_operator_verbose() -> None:
    args = _container(render("operator.logLevel=debug").one("Deployment", "vpcep-operator"))["args"]
    assert "--verbose" in args


def test_gateways_default_to_two_spread_replicas_with_a_budget_and_their_pod_ip(defaults: Rendered) -> None:
    deployment = defaults.one("Deployment", "vpcep-gateway")
    assert deployment["spec"]["replicas"] == 2  # R30
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    _assert_hardened(deployment)
    container = _container(deployment)
    assert container["args"][0] == "gateway"
    env = {
        item["name"]: item["valueFrom"].get("fieldRef", {}).get("fieldPath")
        for item in container["env"]
        if "valueFrom" in item
    }
    assert env["POD_IP"] == "status.podIP"
    assert env["POD_NAME"] == "metadata.name"
    selector = deployment["spec"]["selector"]["matchLabels"]
    anti = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    preferred = anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert preferred["labelSelector"]["matchLabels"] == selector
    assert preferred["topologyKey"] == "kubernetes.io/hostname"
    budget = defaults.one("PodDisruptionBudget", "vpcep-gateway")
    assert budget["spec"]["selector"]["matchLabels"] == selector
    assert budget["spec"]["minAvailable"] == 1
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "vpcep-gateway"
    assert env["POD_UID"] == "metadata.uid"
    # The probes ask HAProxy, in its own container (R47), on the health port the agent renders for it.
    (haproxy,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "haproxy"]
    assert haproxy["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    health_port = {port["name"]: port["containerPort"] for port in haproxy["ports"]}["health"]
    assert f"--health-port={health_port}" in container["args"]
    assert "--runtime-dir=/run/vpcep" in container["args"]
    assert {"name": "state", "mountPath": "/run/vpcep"} in container["volumeMounts"]


def test_hard_anti_affinity_and_replica_count_are_honoured() -> None:
    rendered = render(*VARIATIONS["scoped-hard-spread"])
    deployment = rendered.one("Deployment", "vpcep-gateway")
    assert deployment["spec"]["replicas"] == 3
    anti = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" in anti
    assert "preferredDuringSchedulingIgnoredDuringExecution" not in anti


def test_a_single_gateway_gets_no_budget_that_would_block_node_drains() -> None:
    assert "vpcep-gateway" not in render("gateway.replicas=1").names("PodDisruptionBudget")


def test_operator_config_carries_the_values_the_operator_enforces() -> None:
    config = operator_config(render(*VARIATIONS["tuned"]))
    assert config["namespace"] == NAMESPACE
    assert config["region"] == "eu-west-2"  # R5, R40
    assert config["maxConnectionsPerEndpoint"] == 100  # R21
    assert config["quotas"]["default"] == {  # R9, R22, R49
        "services": 5,
        "endpoints": 50,
        "gatewayPorts": 200,
        "whitelists": 50,
    }
    assert config["quotas"]["overrides"]["team-a"] == {"services": 40, "endpoints": 200}
    assert config["networkPolicy"] is False  # R31
    assert (
        config["gatewayPodLabels"]
        == render().one("Deployment", "vpcep-gateway")["spec"]["selector"]["matchLabels"]
    )
    # R47: only Ready pods of the chart's gateway Deployment are believed.
    assert config["verifyGatewayPods"] is True
    assert render().one("Deployment", config["gatewayDeployment"])


def test_default_cloud_services_are_dns_only_and_a_gateway_type_example_is_in_a_comment(
    defaults: Rendered, tmp_path: pathlib.Path
) -> None:
    """R37 and issue 18: only what every cluster has is published by default (the cluster DNS); the
    Gateway-type example (R38) is a comment in values.yaml, and uncommented it is accepted as it stands."""
    services = {service["name"]: service for service in operator_config(defaults)["cloudServices"]}
    assert list(services) == ["dns"]
    assert services["dns"]["type"] == "Interface"
    assert services["dns"]["ports"] == [{"protocol": "TCP", "serverPort": 53, "clientPort": 53}]
    assert services["dns"]["backend"] == {"kind": "Service", "name": "kube-dns", "namespace": "kube-system"}
    values = (REPO / "charts" / "vpcep-operator" / "values.yaml").read_text()
    example = re.search(r"^#  - name: object-storage\n(?:#    .*\n)+", values, flags=re.MULTILINE)
    assert example, "values.yaml lost its Gateway-type cloud service example"
    uncommented = "".join(line[1:] + "\n" for line in example.group(0).splitlines())
    values_file = tmp_path / "gateway-example.yaml"
    values_file.write_text("cloudServices:\n" + uncommented)
    rendered = operator_config(render(values_file=str(values_file)))["cloudServices"]
    assert [(s["name"], s["type"]) for s in rendered] == [("object-storage", "Gateway")]  # R38


def test_rendered_config_is_accepted_by_the_operator_config_model(defaults: Rendered) -> None:
    from vpcep import config as config_module

    loaded = config_module.OperatorConfig.model_validate(operator_config(defaults))
    assert loaded.namespace == NAMESPACE
    assert loaded.webhook.enabled is True
    assert loaded.webhook.certFile == "/etc/vpcep/webhook/tls.crt"
    assert [service.name for service in loaded.cloudServices] == ["dns"]
    tuned = config_module.OperatorConfig.model_validate(operator_config(render(*VARIATIONS["tuned"])))
    assert tuned.quotas.for_account("team-a").services == 40
    assert tuned.quotas.for_account("team-b").services == 5
    assert tuned.quotas.for_account("team-a").gatewayPorts == 200  # the limits an override does not set


def test_self_signed_webhook_certificate_is_trusted_by_the_configuration(defaults: Rendered) -> None:
    secret = defaults.one("Secret", "vpcep-webhook-tls")
    # openssl (as the API server would) checks the chain, the name the API server dials and the lifetime.
    folder = pathlib.Path(tempfile.mkdtemp())
    for key in ("ca.crt", "tls.crt", "tls.key"):
        (folder / key).write_bytes(base64.b64decode(secret["data"][key]))
    verified = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            folder / "ca.crt",
            "-verify_hostname",
            "vpcep-webhook.vpcep-system.svc",
            "-attime",
            str(int(time.time()) + 365 * 86400),
            folder / "tls.crt",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    public_of_cert = subprocess.run(
        ["openssl", "x509", "-in", folder / "tls.crt", "-noout", "-pubkey"], capture_output=True, check=True
    ).stdout
    public_of_key = subprocess.run(
        ["openssl", "pkey", "-in", folder / "tls.key", "-pubout"], capture_output=True, check=True
    ).stdout
    assert public_of_cert == public_of_key
    configuration = defaults.all("ValidatingWebhookConfiguration")
    assert len(configuration) == 1
    for webhook in configuration[0]["webhooks"]:
        assert base64.b64decode(webhook["clientConfig"]["caBundle"]) == base64.b64decode(
            secret["data"]["ca.crt"]
        )
        service = webhook["clientConfig"]["service"]
        assert (service["name"], service["namespace"]) == ("vpcep-webhook", NAMESPACE)
        assert service["path"] == "/" + webhook["name"].removesuffix(".vpcep.io")
        assert webhook["rules"][0]["apiGroups"] == ["vpcep.io"]
    covered = {res for webhook in configuration[0]["webhooks"] for res in webhook["rules"][0]["resources"]}
    assert covered == {"endpointservices", "endpoints", "whitelists"}
    # The webhook Service reaches the operator pod's webhook port.
    operator = defaults.one("Deployment", "vpcep-operator")
    assert (
        defaults.one("Service", "vpcep-webhook")["spec"]["selector"]
        == operator["spec"]["selector"]["matchLabels"]
    )
    assert "webhook" in {port["name"] for port in _container(operator)["ports"]}


def test_cert_manager_mode_requests_a_certificate_and_ca_injection() -> None:
    rendered = render("webhook.certificate.source=cert-manager")
    assert "vpcep-webhook-tls" not in rendered.names("Secret")
    certificate = rendered.one("Certificate", "vpcep-webhook")
    assert certificate["spec"]["secretName"] == "vpcep-webhook-tls"
    assert certificate["spec"]["issuerRef"] == {"kind": "Issuer", "name": "vpcep-selfsigned"}
    assert rendered.one("Issuer", "vpcep-selfsigned")["spec"] == {"selfSigned": {}}
    configuration = rendered.all("ValidatingWebhookConfiguration")[0]
    assert (
        configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
        == "vpcep-system/vpcep-webhook"
    )
    assert all("caBundle" not in webhook["clientConfig"] for webhook in configuration["webhooks"])
    own_issuer = render(*VARIATIONS["cert-manager-issuer"])
    assert not own_issuer.all("Issuer")
    assert own_issuer.one("Certificate", "vpcep-webhook")["spec"]["issuerRef"] == {
        "kind": "ClusterIssuer",
        "name": "corp-ca",
    }


def test_webhook_off_leaves_no_webhook_objects_and_tells_the_operator() -> None:
    rendered = render("webhook.enabled=false")
    assert not rendered.all("ValidatingWebhookConfiguration")
    assert "vpcep-webhook-tls" not in rendered.names("Secret")
    assert "vpcep-webhook" not in rendered.names("Service")
    assert operator_config(rendered)["webhook"]["enabled"] is False
    mounts = {m["name"] for m in _container(rendered.one("Deployment", "vpcep-operator"))["volumeMounts"]}
    assert "webhook-tls" not in mounts


VARIATION_NAMESPACES = {"watch-namespaces": ["team-a", "team-b"]}


def test_chart_files_follow_crds_folder() -> None:
    link = REPO / "charts" / "vpcep-operator" / "files" / "crds"
    assert link.resolve() == (REPO / "crds").resolve()
    assert pathlib.Path(link).is_dir()


@pytest.mark.parametrize("variation", ["defaults", "webhook-off", "scoped-hard-spread", "watch-namespaces"])
def test_rendered_arguments_are_understood_by_the_programs(variation: str) -> None:
    """The chart and the console scripts evolve apart: an unknown flag would crash-loop the pods."""
    from vpcep.gateway.agent import parse_args as gateway_args
    from vpcep.main import build_config
    from vpcep.main import parse_args as operator_args

    rendered = render(*VARIATIONS[variation])
    operator = _container(rendered.one("Deployment", "vpcep-operator"))["args"]
    assert operator[0] == "operator"
    parsed = operator_args(operator[1:])
    assert str(parsed.config) == "/etc/vpcep/config/config.yaml"
    gateway = _container(rendered.one("Deployment", "vpcep-gateway"))["args"]
    assert gateway[0] == "gateway"
    assert gateway_args(gateway[1:]).runtime_dir == "/run/vpcep"
    # The operator accepts the configuration the chart renders for it, with the webhook files it mounts.
    config_file = pathlib.Path(tempfile.mkdtemp()) / "config.yaml"
    config_file.write_text(rendered.one("ConfigMap", "vpcep-operator-config")["data"]["config.yaml"])
    config = build_config(operator_args([*operator[1:], f"--config={config_file}"]))
    assert config.namespace == NAMESPACE
    assert config.watchNamespaces == sorted(VARIATION_NAMESPACES.get(variation, []))
    mounts = {
        m["mountPath"] for m in _container(rendered.one("Deployment", "vpcep-operator"))["volumeMounts"]
    }
    if config.webhook.enabled:
        assert pathlib.Path(config.webhook.certFile or "").parent.as_posix() in mounts
        assert config.webhook.port in {
            p["containerPort"] for p in _container(rendered.one("Deployment", "vpcep-operator"))["ports"]
        }


def test_the_cluster_domain_reaches_the_operator_and_the_webhook_certificate() -> None:
    """Issue 11: a cluster whose kubelets run with another --cluster-domain."""
    rendered = render("clusterDomain=corp.example", "webhook.certificate.source=cert-manager")
    assert operator_config(rendered)["clusterDomain"] == "corp.example"
    names = rendered.one("Certificate", "vpcep-webhook")["spec"]["dnsNames"]
    assert "vpcep-webhook.vpcep-system.svc.corp.example" in names
    assert not any(name.endswith("cluster.local") for name in names)
