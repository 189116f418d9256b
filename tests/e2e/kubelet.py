"""A test-side stand-in for kubelet (and for the cluster DNS and kube-proxy the webhook call needs): it runs
the containers of a Deployment that Helm installed on the test control plane as local processes. Never
product code.

The test control plane schedules no pods, so this plays the node. For each replica of a Deployment it reads
the pod template from the API server, as a kubelet would, and runs each container:

- the command: the image's ENTRYPOINT (`tini -- vpcep-entrypoint`, see Dockerfile), whose first argument picks
  the console script (`operator` -> vpcep-operator, `gateway` -> vpcep-gateway), becomes `python -m <module>`
  of an `Image` (this tree's package, or an older release's virtualenv), followed by the manifest's args;
- a private mount namespace (unshare) as the container's filesystem: every volume (configMap, secret,
  emptyDir) materialised from the API and bind-mounted at its mountPath, the ServiceAccount token at
  /var/run/secrets/kubernetes.io/serviceaccount (a testbed token for `system:serviceaccount:<ns>:<name>`, so
  the chart's RBAC applies), the root filesystem read-only when readOnlyRootFilesystem says so; the host
  keeps none of it;
- the user: runAsUser/runAsGroup (no passwd entry for them on this machine, as in the image), no new
  privileges when allowPrivilegeEscalation is false (setpriv);
- projected volumes: a ServiceAccount token bound to the pod (its user carries the pod's name, as
  kube-apiserver >= 1.30 adds it), kube-root-ca.crt (the cluster's CA, as kube-controller-manager publishes
  it) and downward-API files; a Secret or ConfigMap volume's `items`; no automounted token when
  automountServiceAccountToken is false;
- env: the manifest's values, downward-API fields (metadata.name/namespace/uid, status.podIP = 127.0.0.1,
  spec.serviceAccountName) and a container's memory limit (resourceFieldRef), KUBERNETES_SERVICE_HOST/PORT
  and the image's ENV;
- probes: httpGet and tcpSocket; the startupProbe gates liveness and readiness; a container whose startup or
  liveness probe fails failureThreshold times in a row is killed and restarted, as kubelet does.

Pods share this machine's network (no network namespace), so their ports must be free: the e2e tests pick the
listen ports through values. With `pod_networks=True` each pod has a network namespace of its own instead
(PodNetworks), so a Deployment's replicas, and a rolling update's surge pod, listen on the same ports side by
side; the Services pods and the API server use are then relays (below).

The testbed's API server cannot resolve Service names (no cluster DNS), so for a webhook whose Service selects
a pod run here, the stand-in points the webhook at the pod's port on 127.0.0.1 (clientConfig.url; with pod
networks, at a relay there that sends each call to a ready pod of the Service) and serves the pod a
certificate for 127.0.0.1 in place of the TLS Secret it mounts: the part a cluster's DNS and kube-proxy
would play. The chart's own certificate is checked elsewhere (tests/chart/test_chart_cluster.py: the API
server accepts it).

A pod in a network of its own finds the Services of its namespace by name, as the cluster DNS and kube-proxy
make them: each Service gets a loopback address in the pod's network and an /etc/hosts line there, and each
of its ports a DNAT rule to a relay that sends the connection to a ready pod the Service selects (the
gateway pods reach the operator's gateway channel so). `run_pod_in` runs one pod of a Deployment in a network
the test made (the gateway pod in a consumer/gateway/provider topology), with its Pod object made as the
Deployment controller would (tests/gateway_pods.py).

Likewise for the API server's own Service: a pod's client may dial https://kubernetes.default.svc (kopf's
in-cluster login did, up to 0.1.0), which needs the cluster DNS and a serving certificate with that name,
neither of which the testbed has. ApiServiceStandIn plays both: the name resolves (the pod's /etc/hosts) to a
loopback address where a TLS relay, with a certificate for the Service's names, forwards to the API server;
the pod's ca.crt holds the cluster's CA and that certificate.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import shlex
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from dataplane.netns import in_netns
from gateway_pods import create_gateway_pod

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT_ROLES = {"operator": "vpcep.main", "gateway": "vpcep.gateway.agent"}
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@dataclass(frozen=True)
class Image:
    """What the image `vpcep-operator:<tag>` runs, as local files: an interpreter and the package's source."""

    python: str = sys.executable
    pythonpath: str = str(REPO / "operator")
    # /etc/passwd lines the image adds (its Dockerfile's useradd). None for this tree's: its pods run under a
    # UID without an entry, as OpenShift's arbitrary UIDs do (issue 18 deliverable 5); an older release that
    # needs the entry (0.1.0: kopf's getpass.getuser()) gets its image's.
    passwd: tuple[str, ...] = ()

    def command(self, args: list[str]) -> list[str]:
        role, *rest = args or ["operator"]
        if role in ENTRYPOINT_ROLES:
            return [self.python, "-m", ENTRYPOINT_ROLES[role], *rest]
        if role in ("python3", "python"):  # anything else is exec'd as is: the image's python3 is its venv's
            return [self.python, *rest]
        raise ValueError(f"kubelet stand-in: the image has no command {role!r}")

    def env(self) -> dict[str, str]:
        # The Dockerfile's ENV, with the package on the path as its virtualenv would have it.
        return {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": self.pythonpath,
        }


Upstream = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


class Relays:
    """TCP relays on one asyncio loop of their own: each listening socket sends every connection it accepts
    to what its `upstream` opens, bytes both ways, until either side closes."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kubelet-relays", daemon=True)
        self._thread.start()

    def serve(
        self, listener: socket.socket, upstream: Upstream, tls: ssl.SSLContext | None = None
    ) -> asyncio.Server:
        async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_reader, up_writer = await upstream()
            except (OSError, LookupError):
                writer.close()
                return
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

        started = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(relay, sock=listener, ssl=tls), self._loop
        )
        return started.result(timeout=10)

    def close(self, server: asyncio.Server) -> None:
        self._loop.call_soon_threadsafe(server.close)

    async def connect_in(
        self, network: str | None, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection to 127.0.0.1:`port` in a pod's network namespace (this machine's when None)."""
        sock = await self._loop.run_in_executor(None, dial, network, port, 2.0)
        sock.setblocking(False)
        return await asyncio.open_connection(sock=sock)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while chunk := await source.read(65536):
            sink.write(chunk)
            await sink.drain()
    except (OSError, ssl.SSLError):
        pass
    finally:
        sink.close()


def dial(network: str | None, port: int, timeout: float) -> socket.socket:
    """Connect to 127.0.0.1:`port` inside network namespace `network` (None: this machine's)."""
    if network is None:
        return socket.create_connection(("127.0.0.1", port), timeout=timeout)
    with in_netns(network):
        return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def listen_in(network: str | None, address: str, port: int) -> socket.socket:
    if network is None:
        return socket.create_server((address, port))
    with in_netns(network):
        return socket.create_server((address, port))


class ApiServiceStandIn:
    """https://kubernetes.default.svc for the pods run here: a TLS relay on a loopback address of its own,
    port 443, with a certificate for the Service's DNS names, to the API server (see the module's
    docstring). One listener on this machine, and one in each pod network (`serve_in`)."""

    NAMES = (
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "kubernetes.default",
        "kubernetes",
    )

    def __init__(self, cluster: Any, workdir: Path, relays: Relays):
        self.cluster = cluster
        self.relays = relays
        self.address = f"127.{random.randint(100, 250)}.{random.randint(1, 250)}.{random.randint(1, 250)}"
        workdir.mkdir(parents=True, exist_ok=True)
        self.certificate, key = workdir / "kubernetes-svc.crt", workdir / "kubernetes-svc.key"
        sans = ",".join(f"DNS:{name}" for name in self.NAMES)
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
             "/CN=kubernetes.default.svc", "-addext", f"subjectAltName={sans}",
             "-keyout", str(key), "-out", str(self.certificate)],
            check=True, capture_output=True,
        )  # fmt: skip
        self._serving = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._serving.load_cert_chain(self.certificate, key)
        self._upstream = ssl.create_default_context(cafile=str(cluster.ca_file))
        self.serve_in(None)

    def serve_in(self, network: str | None) -> list[asyncio.Server]:
        """The listener in `network`; in a pod's, also the API server's own address (127.0.0.1:port, which
        its certificate names) relayed to this machine's, where it listens."""
        url = urlparse(self.cluster.server)
        host, port = url.hostname or "127.0.0.1", url.port or 443

        async def api_server_tls() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            return await asyncio.open_connection(host, port, ssl=self._upstream, server_hostname=host)

        async def api_server() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            return await asyncio.open_connection(host, port)

        servers = [self.relays.serve(listen_in(network, self.address, 443), api_server_tls, self._serving)]
        if network is not None:
            servers.append(self.relays.serve(listen_in(network, host, port), api_server))
        return servers

    def hosts_line(self) -> str:
        return f"{self.address} {' '.join(self.NAMES)}"

    def ca_bundle(self) -> bytes:
        return Path(self.cluster.ca_file).read_bytes() + self.certificate.read_bytes()


class PodNetworks:
    """A network namespace per pod (loopback only), so that the pods of a Deployment listen on the same ports
    side by side, as pods do. Nothing routes to a pod: what reaches it goes through relays (Relays) playing
    the Services: the API server's own address and https://kubernetes.default.svc inside each pod
    (ApiServiceStandIn.serve_in), the webhook's Service on this machine (Kubelet._service_relay, to a ready
    pod). Each pod gets an address of its own as status.podIP (its identity; nothing dials it)."""

    def __init__(self, api_service: ApiServiceStandIn):
        self.api_service = api_service
        self.tag = f"{os.getpid() % 100000}{random.randint(0, 0xFFF):03x}"
        self.pods: dict[str, tuple[str, list[asyncio.Server]]] = {}  # pod -> (namespace name, its relays)
        self.made = 0

    def create(self, pod: str) -> tuple[str, str]:
        """(network namespace, pod IP) of a new pod."""
        self.made += 1
        index = self.made
        network = f"vpcep-pod-{self.tag}-{index}"
        subprocess.run(["ip", "netns", "add", network], check=True, capture_output=True)
        subprocess.run(["ip", "-n", network, "link", "set", "lo", "up"], check=True, capture_output=True)
        self.pods[pod] = (network, self.api_service.serve_in(network))
        return network, f"10.244.{index // 250}.{index % 250 + 1}"

    def destroy(self, pod: str) -> None:
        network, servers = self.pods.pop(pod)
        for server in servers:
            self.api_service.relays.close(server)
        subprocess.run(["ip", "netns", "del", network], capture_output=True)

    def destroy_all(self) -> None:
        for pod in list(self.pods):
            self.destroy(pod)


@dataclass
class Container:
    deployment: str
    pod: str
    spec: dict[str, Any]
    argv: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started: bool = False  # the startupProbe passed (or there is none)
    ready: bool = False
    failures: dict[str, int] = field(default_factory=dict)
    retired: bool = False  # its Deployment rolled out a new template: no more probes or restarts
    labels: dict[str, str] = field(default_factory=dict)  # its pod's
    network: str | None = None  # its pod's network namespace; None: this machine's network


@dataclass(frozen=True)
class Placement:
    """Where a pod runs when the test chose it: its network namespace, its IP and its Pod object's uid."""

    network: str
    pod_ip: str
    pod_uid: str


def _items(files: dict[str, bytes], source: dict[str, Any]) -> dict[str, bytes]:
    """The keys a volume's `items` pick, at their paths (all keys when it lists none)."""
    items = source.get("items")
    return {item["path"]: files[item["key"]] for item in items} if items else files


QUANTITY_SUFFIXES = {
    "Ki": 1 << 10,
    "Mi": 1 << 20,
    "Gi": 1 << 30,
    "Ti": 1 << 40,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
}


def _resource_field(spec: dict[str, Any], ref: dict[str, Any]) -> str:
    """A resourceFieldRef's value (memory and divisor 1 only: what the chart asks for)."""
    if ref["resource"] not in ("limits.memory", "requests.memory") or str(ref.get("divisor", "1")) != "1":
        raise NotImplementedError(f"kubelet stand-in: resourceFieldRef {ref}")
    (container,) = [c for c in spec["containers"] if c["name"] == ref["containerName"]]
    kind, resource = ref["resource"].split(".")
    quantity = str(container["resources"][kind][resource])
    for suffix, factor in QUANTITY_SUFFIXES.items():
        if quantity.endswith(suffix):
            return str(int(quantity.removesuffix(suffix)) * factor)
    return quantity


class Kubelet:
    """Runs the pods of Deployments on this machine; `stop()` ends them all."""

    def __init__(
        self,
        cluster: Any,
        workdir: Path,
        image: Image,
        webhook_certificate: tuple[Path, Path],
        pod_networks: bool = False,
    ):
        """`pod_networks`: each pod in a network namespace of its own (see PodNetworks) instead of this
        machine's network, so that pods of one Deployment may listen on the same ports."""
        self.cluster = cluster
        self.workdir = workdir
        self.image = image
        self.webhook_certificate = webhook_certificate
        self.containers: list[Container] = []
        self._stopping = threading.Event()
        self._prober: threading.Thread | None = None
        # The Services (namespace, name) whose webhooks point at pods here: their certificates are replaced
        self._routed_webhooks: set[tuple[str, str]] = set()
        self._original_webhooks: dict[str, list[dict[str, Any]]] = {}  # configuration name -> its webhooks
        self.relays = Relays()
        self.api_service = ApiServiceStandIn(cluster, workdir, self.relays)
        self.networks = PodNetworks(self.api_service) if pod_networks else None
        self._service_relays: dict[tuple[str, str, int], int] = {}  # (namespace, Service, target) -> port

    # --- reading the API ------------------------------------------------------------------------

    def _get(self, *args: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.cluster.kubectl_run("get", *args, "-o", "json").stdout)
        return loaded

    # --- pods -----------------------------------------------------------------------------------

    def run_deployment(self, namespace: str, name: str, image: Image | None = None) -> list[Container]:
        """Its pods, run from `image` (the kubelet's own unless told: an older release's)."""
        deployment = self._get("deployment", name, "-n", namespace)
        template = deployment["spec"]["template"]
        self._route_webhooks(namespace, template)  # the Service exists before its pods, as in a cluster
        started = []
        for _ in range(deployment["spec"].get("replicas", 1)):
            pod = f"{name}-{uuid.uuid4().hex[:5]}"
            started += self._run_pod(namespace, name, pod, template, image or self.image)
        if self._prober is None:
            self._prober = threading.Thread(target=self._probe_forever, name="kubelet-probes", daemon=True)
            self._prober.start()
        return started

    def run_pod_in(self, namespace: str, name: str, network: str, pod_ip: str) -> list[Container]:
        """One pod of Deployment `name`, in network namespace `network` (made by the test, with the routes it
        wants; nothing here adds a way to the API server) at `pod_ip`. Its Pod object is made as the
        Deployment controller would (tests/gateway_pods.py), so the operator believes it is the Deployment's
        (R47); the pod's token is bound to it."""
        deployment = self._get("deployment", name, "-n", namespace)
        template = deployment["spec"]["template"]
        pod = f"{name}-{uuid.uuid4().hex[:5]}"
        kubectl = self.cluster.kubectl_run
        create_gateway_pod(
            kubectl, namespace, pod, pod_ip, deployment=name, labels=template["metadata"]["labels"]
        )
        uid = self._get("pod", pod, "-n", namespace)["metadata"]["uid"]
        started = self._run_pod(namespace, name, pod, template, self.image, Placement(network, pod_ip, uid))
        if self._prober is None:
            self._prober = threading.Thread(target=self._probe_forever, name="kubelet-probes", daemon=True)
            self._prober.start()
        return started

    def roll_out(
        self, namespace: str, name: str, image: Image | None = None, timeout: float = 120.0
    ) -> list[Container]:
        """A new pod template, as the Deployment's strategy says. Recreate: the old pods end first.
        RollingUpdate, with pod networks only (on this machine's network a surge pod could not bind the old
        pod's ports): one new pod at a time (the chart's maxSurge 1, maxUnavailable 0), each old pod ending
        once a new one is ready."""
        deployment = self._get("deployment", name, "-n", namespace)
        template = deployment["spec"]["template"]
        strategy = deployment["spec"].get("strategy") or {}
        # The webhook's Service is back in the configuration Helm just applied: routed again at once, so the
        # old pods answer until they end, as the Service's endpoints would.
        self._route_webhooks(namespace, template)
        old = [c for c in self.containers if c.deployment == name]
        if strategy.get("type") == "Recreate":
            self.end(old)
            return self.run_deployment(namespace, name, image)
        if self.networks is None:
            raise NotImplementedError(
                f"kubelet stand-in: a RollingUpdate of {name} needs pod networks (Kubelet(pod_networks=True))"
            )
        old_pods = sorted({c.pod for c in old})
        started: list[Container] = []
        for _ in range(deployment["spec"].get("replicas", 1)):
            pod = f"{name}-{uuid.uuid4().hex[:5]}"
            new = self._run_pod(namespace, name, pod, template, image or self.image)
            started += new
            deadline = time.monotonic() + timeout
            while not all(c.ready for c in new):
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"kubelet stand-in: {pod} not ready after {timeout} s\n{self.logs()}"
                    )
                time.sleep(0.2)
            if old_pods:
                ending = old_pods.pop(0)
                self.end([c for c in old if c.pod == ending])
        self.end([c for c in old if c.pod in old_pods])
        return started

    def end(self, containers: list[Container]) -> None:
        """Out of its Service first (retired), then SIGTERM; its pod network goes with its last container."""
        for container in containers:
            container.retired = True
        for container in containers:
            self._kill(container)
            self.containers.remove(container)
            if (
                self.networks is not None
                and container.pod in self.networks.pods
                and not any(c.pod == container.pod for c in self.containers)
            ):
                self.networks.destroy(container.pod)

    def _run_pod(
        self,
        namespace: str,
        deployment: str,
        pod: str,
        template: dict[str, Any],
        image: Image,
        placed: Placement | None = None,
    ) -> list[Container]:
        spec = template["spec"]
        pod_dir = self.workdir / pod
        pod_dir.mkdir(parents=True)
        network: str | None
        if placed is not None:
            network, pod_ip, pod_uid = placed.network, placed.pod_ip, placed.pod_uid
        else:
            network, pod_ip = self.networks.create(pod) if self.networks is not None else (None, "127.0.0.1")
            pod_uid = str(uuid.uuid4())
        account = spec.get("serviceAccountName", "default")
        fields = {
            "metadata.name": pod,
            "metadata.namespace": namespace,
            "metadata.uid": pod_uid,
            "status.podIP": pod_ip,
            "spec.serviceAccountName": account,
        }
        volumes = self._volumes(namespace, spec, pod_dir, account, fields)
        # In a network of its own, the pod finds its namespace's Services by name (cluster DNS, kube-proxy).
        hosts = self._services_in(network, namespace) if network is not None else []
        started = []
        for container_spec in spec["containers"]:
            security = {
                **(spec.get("securityContext") or {}),
                **(container_spec.get("securityContext") or {}),
            }
            env = {
                **image.env(),
                "HOSTNAME": pod,
                "KUBERNETES_SERVICE_HOST": urlparse(self.cluster.server).hostname or "127.0.0.1",
                "KUBERNETES_SERVICE_PORT": str(urlparse(self.cluster.server).port or 443),
            }
            for item in container_spec.get("env", []):
                if "value" in item:
                    env[item["name"]] = item["value"]
                elif "fieldRef" in item["valueFrom"]:
                    env[item["name"]] = fields[item["valueFrom"]["fieldRef"]["fieldPath"]]
                else:
                    env[item["name"]] = _resource_field(spec, item["valueFrom"]["resourceFieldRef"])
            mounts = [(volumes[m["name"]], m["mountPath"]) for m in container_spec.get("volumeMounts", [])]
            if spec.get("automountServiceAccountToken", True):
                mounts.append((volumes["__serviceaccount__"], SERVICE_ACCOUNT_DIR))
            command = image.command(container_spec.get("args", []))
            scratch = pod_dir / container_spec["name"]
            argv = self._sandbox(scratch, pod_dir / "volumes", mounts, security, command, image, hosts)
            if network is not None:
                argv = ["nsenter", f"--net=/var/run/netns/{network}", *argv]
            container = Container(
                deployment=deployment,
                pod=pod,
                spec=container_spec,
                argv=argv,
                env=env,
                log=pod_dir / f"{container_spec['name']}.log",
                labels=template["metadata"].get("labels", {}),
                network=network,
            )
            container.started = "startupProbe" not in container_spec
            self._start(container)
            self.containers.append(container)
            started.append(container)
        return started

    def _volumes(
        self, namespace: str, spec: dict[str, Any], pod_dir: Path, account: str, fields: dict[str, str]
    ) -> dict[str, Path]:
        """Each volume as a directory under the pod's, readable by the pod's user (fsGroup), no one else."""
        security = spec.get("securityContext") or {}
        uid, gid = security.get("runAsUser", 0), security.get("fsGroup", security.get("runAsGroup", 0))
        found: dict[str, Path] = {}
        files: dict[str, dict[str, bytes]] = {}
        user = f"system:serviceaccount:{namespace}:{account}"
        for volume in spec.get("volumes", []):
            name = volume["name"]
            if "emptyDir" in volume:
                files[name] = {}
            elif "projected" in volume:
                files[name] = {}
                for source in volume["projected"]["sources"]:
                    files[name] |= self._volume_files(namespace, source, user, fields)
            else:
                files[name] = self._volume_files(namespace, volume, user, fields)
        user = f"system:serviceaccount:{namespace}:{account}"
        files["__serviceaccount__"] = {
            "token": self.cluster.token_for(user).encode(),
            "namespace": namespace.encode(),
            "ca.crt": self.api_service.ca_bundle(),
        }
        for name, content in files.items():
            folder = pod_dir / "volumes" / name
            folder.mkdir(parents=True)
            for key, data in content.items():
                (folder / key).write_bytes(data)
                os.chown(folder / key, uid, gid)
                (folder / key).chmod(0o640)
            os.chown(folder, uid, gid)
            folder.chmod(0o770 if not content else 0o750)
            found[name] = folder
        os.chown(pod_dir / "volumes", uid, gid)
        return found

    def _volume_files(
        self, namespace: str, source: dict[str, Any], user: str, fields: dict[str, str]
    ) -> dict[str, bytes]:
        """The files of a volume (or of one source of a projected volume), by path."""
        if "configMap" in source:
            name = source["configMap"]["name"]
            if name == "kube-root-ca.crt":  # kube-controller-manager publishes it; the testbed runs none
                data = {"ca.crt": self.api_service.ca_bundle().decode()}
            else:
                data = self._get("configmap", name, "-n", namespace).get("data", {})
            return _items({key: value.encode() for key, value in data.items()}, source["configMap"])
        if "secret" in source:
            return _items(self._secret_files(namespace, source["secret"]["secretName"]), source["secret"])
        if "serviceAccountToken" in source:
            # A token bound to the pod: the API server adds the pod's name to its user (>= 1.30)
            bound = {"authentication.kubernetes.io/pod-name": fields["metadata.name"]}
            token = self.cluster.token_for(user, extra=bound)
            return {source["serviceAccountToken"]["path"]: token.encode()}
        if "downwardAPI" in source:
            return {
                item["path"]: fields[item["fieldRef"]["fieldPath"]].encode()
                for item in source["downwardAPI"]["items"]
            }
        raise NotImplementedError(f"kubelet stand-in: a volume of an unsupported type: {sorted(source)}")

    def _secret_files(self, namespace: str, name: str) -> dict[str, bytes]:
        secret = self._get("secret", name, "-n", namespace)
        files = {key: base64.b64decode(value) for key, value in secret.get("data", {}).items()}
        if secret.get("type") == "kubernetes.io/tls" and self._names_a_routed_webhook(
            files.get("tls.crt", b"")
        ):
            cert, key = self.webhook_certificate  # stands in for the Service's DNS name: see the docstring
            return {"tls.crt": cert.read_bytes(), "tls.key": key.read_bytes(), "ca.crt": cert.read_bytes()}
        return files

    def _names_a_routed_webhook(self, certificate: bytes) -> bool:
        """Whether `certificate` is a routed webhook Service's serving certificate (names <svc>.<ns>.svc).
        Other TLS Secrets (the gateway channel's) reach their pods as they are."""
        if not certificate:
            return False
        names = subprocess.run(
            ["openssl", "x509", "-noout", "-ext", "subjectAltName"],
            input=certificate, capture_output=True, check=False,
        ).stdout.decode()  # fmt: skip
        return any(f"DNS:{service}.{namespace}.svc" in names for namespace, service in self._routed_webhooks)

    def _sandbox(
        self,
        scratch: Path,
        volumes: Path,
        mounts: list[tuple[Path, str]],
        security: dict[str, Any],
        command: list[str],
        image: Image,
        hosts: list[str],
    ) -> list[str]:
        """`unshare` a private mount namespace, mount the volumes (kept under `volumes`), drop to the pod's
        user, exec the command. `scratch`: the container's own directory for its private layers."""
        steps = [
            # /etc gets a private writable layer, so mount points can be made there; the host's stays as is.
            f"mkdir -p {scratch}/etc-upper {scratch}/etc-work",
            "mount -t overlay overlay -o lowerdir=/etc,"
            f"upperdir={scratch}/etc-upper,workdir={scratch}/etc-work /etc",
        ]
        steps += [
            f"echo {shlex.quote(line)} >> /etc/hosts" for line in [self.api_service.hosts_line(), *hosts]
        ]
        steps += [f"echo {shlex.quote(line)} >> /etc/passwd" for line in image.passwd]
        # The interpreter lives under /root (mode 0700 here): the pod's user gets a way through to it only.
        under_root = sorted(
            {
                p.split("/")[2]
                for p in (sys.base_prefix, sys.prefix, image.python, os.path.realpath(image.python))
                if p.startswith("/root/")
            }
        )
        if under_root:
            steps += [f"mkdir -p {scratch}/root", f"mount --bind /root {scratch}/root"]
            steps.append("mount -t tmpfs -o mode=0755 tmpfs /root")
            for name in under_root:
                steps += [f"mkdir -p /root/{name}", f"mount --bind {scratch}/root/{name} /root/{name}"]
        # The volumes reach their mount points through a staging mount under the container's own /run, since a
        # mount point (/tmp) may cover where they are kept on this machine.
        staging = "/run/kubelet-volumes"
        steps += ["mount -t tmpfs -o mode=0755 tmpfs /run", f"mkdir -p {staging}"]
        steps.append(f"mount --bind {volumes} {staging}")
        # The stand-in's "image" is this checkout and its virtualenv: a volume over their parent (an emptyDir
        # at /tmp covers a clone under /tmp) must not hide them: kept aside, bound back afterwards.
        covered = sorted(
            {
                path
                for path in (str(REPO), sys.prefix)
                if any(path == t or path.startswith(t.rstrip("/") + "/") for _, t in mounts)
            }
        )
        for index, path in enumerate(covered):
            keep = f"/run/kubelet-keep/{index}"
            steps += [f"mkdir -p {keep}", f"mount --bind {shlex.quote(path)} {keep}"]
        for source, target in mounts:
            quoted = shlex.quote(target)
            steps += [f"mkdir -p {quoted}", f"mount --bind {staging}/{source.name} {quoted}"]
        for index, path in enumerate(covered):
            quoted = shlex.quote(path)
            steps += [f"mkdir -p {quoted}", f"mount --bind /run/kubelet-keep/{index} {quoted}"]
        if security.get("readOnlyRootFilesystem"):
            steps.append("mount -o remount,bind,ro /")
        drop = [
            "setpriv",
            f"--reuid={security.get('runAsUser', 0)}",
            f"--regid={security.get('runAsGroup', 0)}",
        ]
        drop += ["--clear-groups"] if "fsGroup" not in security else [f"--groups={security['fsGroup']}"]
        if security.get("allowPrivilegeEscalation") is False:
            drop.append("--no-new-privs")
        script = " && ".join(steps) + " && exec " + shlex.join([*drop, "--", *command])
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]

    def _start(self, container: Container) -> None:
        with container.log.open("ab") as out:
            out.write(f"--- start {container.restarts} at {time.strftime('%H:%M:%S')}\n".encode())
            container.process = subprocess.Popen(
                container.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=container.env,
                start_new_session=True,
            )

    def _kill(self, container: Container) -> None:
        process = container.process
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def stop(self) -> None:
        self._stopping.set()
        if self._prober is not None:
            self._prober.join(timeout=30)
        for container in self.containers:
            self._kill(container)
        self.unroute_webhooks()
        if self.networks is not None:
            self.networks.destroy_all()
        self.relays.stop()

    def logs(self) -> str:
        return "\n".join(
            f"--- {c.pod}/{c.spec['name']} (restarts {c.restarts})\n"
            + c.log.read_text(errors="replace")[-4000:]
            for c in self.containers
        )

    # --- probes ---------------------------------------------------------------------------------

    def _probe_once(self, container: Container, probe: dict[str, Any]) -> bool:
        """The probe from the pod's own network: a TCP connect, or an HTTP GET answered 200-399."""
        ports = {p["name"]: p["containerPort"] for p in container.spec.get("ports", [])}
        timeout = probe.get("timeoutSeconds", 1)
        action = probe.get("httpGet") or probe["tcpSocket"]
        try:
            with dial(container.network, int(ports.get(action["port"], action["port"])), timeout) as sock:
                if "httpGet" not in probe:
                    return True
                sock.settimeout(timeout)
                sock.sendall(f"GET {action.get('path', '/')} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
                status_line = sock.makefile("rb").readline().split()
                return len(status_line) >= 2 and 200 <= int(status_line[1]) < 400
        except (OSError, ValueError):
            return False

    def _probe_forever(self) -> None:
        last: dict[tuple[int, str], float] = {}
        while not self._stopping.wait(0.5):
            now = time.monotonic()
            for index, container in enumerate(list(self.containers)):
                process = container.process
                if process is not None and process.poll() is not None:
                    self._restart(container, f"exited {process.returncode}")
                    continue
                kinds = ["startupProbe"] if not container.started else ["livenessProbe", "readinessProbe"]
                for kind in kinds:
                    probe = container.spec.get(kind)
                    if probe is None:
                        if kind == "readinessProbe":
                            container.ready = True
                        continue
                    key = (index, kind)
                    if now - last.get(key, 0.0) < probe.get("periodSeconds", 10):
                        continue
                    last[key] = now
                    self._judge(container, kind, probe, self._probe_once(container, probe))

    def _judge(self, container: Container, kind: str, probe: dict[str, Any], passed: bool) -> None:
        if container.retired:
            return
        if passed:
            container.failures[kind] = 0
            if kind == "startupProbe":
                container.started = True
            if kind == "readinessProbe":
                container.ready = True
            return
        container.failures[kind] = container.failures.get(kind, 0) + 1
        if kind == "readinessProbe":
            container.ready = False
        elif container.failures[kind] >= probe.get("failureThreshold", 3):
            self._restart(container, f"{kind} failed {container.failures[kind]} times")

    def _restart(self, container: Container, why: str) -> None:
        """Kill and start again after a back-off that doubles per restart (kubelet's CrashLoopBackOff: 10 s
        doubling to 5 min; here 1 s doubling to 30 s, which tests can wait for)."""
        if container.retired:
            return
        self._kill(container)
        back_off = min(2.0**container.restarts, 30.0)
        with container.log.open("ab") as out:
            out.write(f"--- kubelet stand-in: restarting in {back_off:.0f} s ({why})\n".encode())
        container.restarts += 1
        container.failures.clear()
        container.started = "startupProbe" not in container.spec
        container.ready = False
        if not self._stopping.wait(back_off):
            self._start(container)

    # --- the webhook's Service, as cluster DNS and kube-proxy would resolve it ----------------------

    def _route_webhooks(self, namespace: str, template: dict[str, Any]) -> None:
        labels = template["metadata"].get("labels", {})
        ports = {
            p["name"]: p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])
        }
        ca_bundle = base64.b64encode(self.webhook_certificate[0].read_bytes()).decode()
        for configuration in self._get("validatingwebhookconfigurations")["items"]:
            original = json.loads(json.dumps(configuration["webhooks"]))
            patched = False
            for webhook in configuration["webhooks"]:
                service_ref = webhook["clientConfig"].get("service")
                if not service_ref or service_ref["namespace"] != namespace:
                    continue
                service = self._get("service", service_ref["name"], "-n", namespace)
                selector = service["spec"].get("selector") or {}
                if not selector or any(labels.get(k) != v for k, v in selector.items()):
                    continue
                port = next(p for p in service["spec"]["ports"] if p["port"] == service_ref.get("port", 443))
                target = int(ports.get(port["targetPort"], port["targetPort"]))
                if self.networks is not None:
                    target = self._service_relay(namespace, service_ref["name"], selector, target)
                webhook["clientConfig"] = {
                    "url": f"https://127.0.0.1:{target}{service_ref.get('path', '/')}",
                    "caBundle": ca_bundle,
                }
                patched = True
                self._routed_webhooks.add((namespace, service_ref["name"]))
            if patched:
                self._original_webhooks.setdefault(configuration["metadata"]["name"], original)
                self._patch_webhooks(configuration["metadata"]["name"], configuration["webhooks"])

    def _service_relay(self, namespace: str, service: str, selector: dict[str, str], target: int) -> int:
        """With pod networks: the Service as its endpoints and kube-proxy make it, a relay on this machine
        that sends each connection to the target port of a ready pod it selects (round robin). Returns the
        relay's port."""
        key = (namespace, service, target)
        if key in self._service_relays:
            return self._service_relays[key]
        listener = socket.create_server(("127.0.0.1", 0))
        self.relays.serve(listener, self._ready_pod(namespace, service, selector, target))
        self._service_relays[key] = int(listener.getsockname()[1])
        return self._service_relays[key]

    def _ready_pod(
        self, namespace: str, service: str, selector: dict[str, str], target: int | str
    ) -> Upstream:
        """A connection to `target` (a port, or the name of a container port) of a ready pod that `selector`
        selects, round robin; a pod that refuses (it just ended) is passed over."""
        turn = iter(range(1 << 62))

        def port_of(container: Container) -> int | None:
            if isinstance(target, int):
                return target
            named = {p.get("name"): p["containerPort"] for p in container.spec.get("ports", [])}
            return named.get(target)

        async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            ready = [
                (c, port)
                for c in self.containers
                if c.ready and not c.retired and all(c.labels.get(k) == v for k, v in selector.items())
                if (port := port_of(c)) is not None
            ]
            first = next(turn)
            for n in range(len(ready)):
                container, port = ready[(first + n) % len(ready)]
                try:
                    return await self.relays.connect_in(container.network, port)
                except OSError:
                    continue
            raise LookupError(f"no ready pod behind Service {namespace}/{service} answers")

        return connect

    def _services_in(self, network: str, namespace: str) -> list[str]:
        """The Services of `namespace` that select pods, as the cluster DNS and kube-proxy give them to a pod
        in network namespace `network`: each a loopback address of its own there, each of its ports relayed
        to a ready pod it selects (run here). Returns the /etc/hosts lines that resolve their names."""
        lines = []
        for service in self._get("services", "-n", namespace).get("items", []):
            name, selector = service["metadata"]["name"], service["spec"].get("selector") or {}
            if not selector:
                continue
            address = f"127.{random.randint(100, 250)}.{random.randint(1, 250)}.{random.randint(1, 250)}"
            for port in service["spec"]["ports"]:
                upstream = self._ready_pod(namespace, name, selector, port.get("targetPort", port["port"]))
                # The relay listens on a port of its own and kube-proxy's DNAT sends the Service's port there:
                # listening on the Service's port itself would take it from a pod binding it on every address.
                listener = listen_in(network, address, 0)
                self.relays.serve(listener, upstream)
                subprocess.run(
                    ["ip", "netns", "exec", network, "iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp",
                     "-d", address, "--dport", str(port["port"]),
                     "-j", "DNAT", "--to-destination", f"{address}:{listener.getsockname()[1]}"],
                    check=True, capture_output=True,
                )  # fmt: skip
            names = [
                f"{name}.{namespace}.svc",
                f"{name}.{namespace}.svc.cluster.local",
                f"{name}.{namespace}",
            ]
            lines.append(f"{address} {' '.join(names)} {name}")
        return lines

    def _patch_webhooks(self, name: str, webhooks: list[dict[str, Any]]) -> None:
        body = json.dumps({"webhooks": webhooks})
        self.cluster.kubectl_run("patch", "validatingwebhookconfiguration", name, "--type=merge", "-p", body)

    def unroute_webhooks(self) -> None:
        """Back to the Services, as Helm wrote them: Helm's next apply then finds its own values there."""
        for name, webhooks in self._original_webhooks.items():
            if (
                self.cluster.kubectl_run(
                    "get", "validatingwebhookconfiguration", name, check=False
                ).returncode
                == 0
            ):
                self._patch_webhooks(name, webhooks)
        self._original_webhooks.clear()
