"""The suite's Kubernetes API for tests marked ``@pytest.mark.cluster``: the session fixture ``cluster``.

Which API (first that applies):

1. ``KUBECONFIG`` is set: that existing cluster (e.g. kind from ``hack/kind-up.sh``). Its server must be on
   loopback unless ``VPCEP_TEST_ALLOW_REMOTE=1``: the suite creates and deletes namespaces. Users other than
   the admin are impersonated (``Impersonate-User``/``-Group``), since such clusters have no static tokens.
2. ``KUBEBUILDER_ASSETS`` holds envtest binaries (etcd, kube-apiserver): started privately on free ports with
   static tokens and RBAC, like the testbed. Not exercised on this project's machines (envtest binaries cannot
   be downloaded here), and envtest has no controller-manager: garbage collection and namespace cleanup do not
   happen there.
3. Otherwise the Debian-built testbed (``hack/testbed``): a private instance for this pytest session, in a
   temporary directory on free ports, built on first use (~5 min; cached in ~/.cache/vpcep-testbed after),
   stopped at the end. If it cannot be built or started the session FAILS; it never skips.

Named users: on the testbed every user is a static token in the instance's tokens file, which the API
server re-reads when it changes (envtest: only the predeclared ones; other names are impersonated).
Predeclared: ``admin`` (system:masters), ``tenant-a`` and ``tenant-b`` (group ``tenants``),
``system:serviceaccount:vpcep-system:vpcep-operator`` and
``system:serviceaccount:vpcep-system:vpcep-gateway``.
``cluster.token_for(name, groups)`` returns the token of any other name, adding it on first use
(service-account names get their kube groups automatically). They have no rights beyond discovery until a test
binds a Role to them: RBAC is enforced.

Helpers on the fixture: ``kubeconfig_for(user)``, ``api_client(user)`` (a ``kubernetes.client.ApiClient``),
``kubectl_run(*args, user=..., input=..., check=...)`` and ``create_namespace(prefix)``.
``cluster.kubectl`` is the ``kubectl`` on PATH, else the testbed's own (sid's 1.36).
"""

from __future__ import annotations

import csv
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TESTBED = REPO / "hack" / "testbed"
BUILD_TIMEOUT_S = 1800


def _extra_column(extra: Mapping[str, str] | None) -> str:
    """User extras as the testbed's tokens file spells them (hack/testbed.d/apiserver/rbac.go)."""
    return ";".join(f"{key}={value}" for key, value in sorted((extra or {}).items()))


def _service_account_groups(name: str) -> list[str]:
    parts = name.split(":")
    if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
        return ["system:serviceaccounts", f"system:serviceaccounts:{parts[2]}"]
    return []


@dataclass
class Cluster:
    """A reachable Kubernetes API and the means to act on it as the admin or as any named user."""

    kind: str  # "testbed" | "envtest" | "existing"
    kubeconfig: Path  # the admin's
    server: str
    admin_token: str | None  # None on clusters whose admin authenticates otherwise (kind: client certificate)
    ca_file: Path | None
    kubectl: str  # kubectl on PATH, else the testbed's own (sid's 1.36)
    tokens_file: Path | None = None
    instance_dir: Path | None = None
    _scratch: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="vpcep-kube-")))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- users -------------------------------------------------------------------------------------------
    def _known_token(self, user: str, extra: Mapping[str, str] | None = None) -> str | None:
        if self.tokens_file is None:
            return None
        wanted = _extra_column(extra)
        for record in csv.reader(self.tokens_file.read_text().splitlines()):
            token, name, *rest = record
            if name == user and (rest[2] if len(rest) > 2 else "") == wanted:
                return token
        return None

    def token_for(self, user: str, groups: Sequence[str] = (), extra: Mapping[str, str] | None = None) -> str:
        """The static token of ``user``; the testbed adds a new name to its tokens file on first use.

        ``extra``: user extras the token carries (the testbed's fifth column), e.g. the
        ``authentication.kubernetes.io/pod-name`` of a pod-bound ServiceAccount token."""
        with self._lock:
            token = self._known_token(user, extra)
            if token is not None:
                return token
            if self.kind != "testbed" or self.tokens_file is None:
                raise RuntimeError(f"{user!r} has no token on this {self.kind} cluster; use kubeconfig_for()")
            token = secrets.token_hex(16)
            all_groups = ",".join([*_service_account_groups(user), *groups])
            extra_column = f',"{_extra_column(extra)}"' if extra else ""
            with self.tokens_file.open("a") as f:
                f.write(f'{token},{user},{user},"{all_groups}"{extra_column}\n')
            return token

    def _impersonates(self, user: str) -> bool:
        return self.kind != "testbed" and self._known_token(user) is None

    def kubeconfig_for(
        self, user: str, groups: Sequence[str] = (), extra: Mapping[str, str] | None = None
    ) -> Path:
        """A kubeconfig acting as ``user`` (a token on the testbed, impersonation elsewhere)."""
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in user)
        path = self._scratch / f"kubeconfig-{safe}-{uuid.uuid4().hex[:6]}"
        config = yaml.safe_load(self.kubeconfig.read_text())
        context = next(c for c in config["contexts"] if c["name"] == config["current-context"])
        admin_user = next(u for u in config["users"] if u["name"] == context["context"]["user"])
        if not self._impersonates(user):
            user_entry: dict[str, Any] = {"token": self.token_for(user, groups, extra)}
        else:
            user_entry = dict(admin_user["user"], **{"as": user})
            all_groups = [*_service_account_groups(user), *groups]
            if all_groups:
                user_entry["as-groups"] = all_groups
            if extra:
                user_entry["as-user-extra"] = {key: [value] for key, value in extra.items()}
        config["users"] = [{"name": user, "user": user_entry}]
        context["context"]["user"] = user
        config["contexts"] = [context]
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def api_client(self, user: str | None = None, groups: Sequence[str] = ()) -> Any:
        """A ``kubernetes.client.ApiClient`` for the admin, or for ``user``."""
        from kubernetes import config as kube_config

        path = self.kubeconfig if user is None else self.kubeconfig_for(user, groups)
        client = kube_config.new_client_from_config(config_file=str(path))
        if user is not None and self._impersonates(user):
            client.set_default_header("Impersonate-User", user)
            for group in [*_service_account_groups(user), *groups]:
                client.set_default_header("Impersonate-Group", group)  # the client sends one header value
        return client

    # -- kubectl -----------------------------------------------------------------------------------------
    def kubectl_run(
        self,
        *args: str,
        user: str | None = None,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Runs kubectl as the admin or as ``user``; returns the completed process (text)."""
        config = self.kubeconfig if user is None else self.kubeconfig_for(user)
        proc = subprocess.run(
            [self.kubectl, "--kubeconfig", str(config), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}"
            )
        return proc

    def create_namespace(self, prefix: str = "t") -> str:
        """A new namespace with a unique name (tests running at once never collide)."""
        name = f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.kubectl_run("create", "namespace", name)
        return name


def _existing_cluster(kubeconfig: str) -> Cluster:
    path = Path(kubeconfig.split(os.pathsep)[0]).expanduser()
    config = yaml.safe_load(path.read_text())
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])
    cluster = next(c for c in config["clusters"] if c["name"] == context["context"]["cluster"])["cluster"]
    user = next(u for u in config["users"] if u["name"] == context["context"]["user"])["user"]
    server = cluster["server"]
    host = urlparse(server).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1") and os.environ.get("VPCEP_TEST_ALLOW_REMOTE") != "1":
        pytest.fail(
            f"KUBECONFIG points at {server}, not a local cluster: the suite creates and deletes namespaces "
            "there. "
            "Set VPCEP_TEST_ALLOW_REMOTE=1 if that is intended, or unset KUBECONFIG to use hack/testbed.",
            pytrace=False,
        )
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is not on PATH", pytrace=False)
    ca = cluster.get("certificate-authority")
    return Cluster(
        kind="existing",
        kubeconfig=path,
        server=server,
        admin_token=user.get("token"),
        ca_file=Path(ca) if ca else None,
        kubectl=kubectl,
    )


def _start_testbed(instance: Path) -> Cluster:
    # The instance stops by itself when this pytest process is gone, even if it is killed.
    env = dict(os.environ, VPCEP_TESTBED_DIR=str(instance), VPCEP_TESTBED_OWNER_PID=str(os.getpid()))
    for var in ("VPCEP_TESTBED_API_PORT", "VPCEP_TESTBED_ETCD_PORT"):
        env.pop(var, None)  # a private instance always takes free ports
    try:
        proc = subprocess.run(
            [str(TESTBED), "up"], env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"hack/testbed up did not finish in {BUILD_TIMEOUT_S} s:\n{e.stderr!r}", pytrace=False)
    if proc.returncode != 0:
        pytest.fail(
            "the test control plane could not be built or started "
            f"(hack/testbed up exited {proc.returncode}):\n"
            f"{proc.stderr}{proc.stdout}",
            pytrace=False,
        )
    state = dict(line.split("=", 1) for line in (instance / "state").read_text().splitlines() if "=" in line)
    tokens = instance / "tokens.csv"
    admin = next(
        line.split(",")[0] for line in tokens.read_text().splitlines() if line.split(",")[1] == "admin"
    )
    kubectl = shutil.which("kubectl") or str(Path(state["build"]) / "bin" / "kubectl")
    return Cluster(
        kind="testbed",
        kubeconfig=instance / "kubeconfig",
        server=f"https://127.0.0.1:{state['api_port']}",
        admin_token=admin,
        ca_file=instance / "certs" / "apiserver.crt",
        kubectl=kubectl,
        tokens_file=tokens,
        instance_dir=instance,
    )


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


_SA_GROUPS = "system:serviceaccounts,system:serviceaccounts:vpcep-system"
PREDECLARED_USERS = {
    "admin": "system:masters",
    "tenant-a": "tenants",
    "tenant-b": "tenants",
    "system:serviceaccount:vpcep-system:vpcep-operator": _SA_GROUPS,
    "system:serviceaccount:vpcep-system:vpcep-gateway": _SA_GROUPS,
}


class _Envtest:
    """etcd + kube-apiserver from envtest binaries, with the testbed's predeclared users (read once)."""

    def __init__(self, assets: Path, workdir: Path) -> None:
        self.assets, self.dir = assets, workdir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> Cluster:
        api_port, etcd_port, peer_port = _free_ports(3)
        tokens = self.dir / "tokens.csv"
        tokens.write_text(
            "".join(
                f'{secrets.token_hex(16)},{user},{user},"{groups}"\n'
                for user, groups in PREDECLARED_USERS.items()
            )
        )
        key = self.dir / "sa.key"
        subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
        self._spawn(
            "etcd",
            [
                str(self.assets / "etcd"),
                "--data-dir",
                str(self.dir / "etcd"),
                "--listen-client-urls",
                f"http://127.0.0.1:{etcd_port}",
                "--advertise-client-urls",
                f"http://127.0.0.1:{etcd_port}",
                "--listen-peer-urls",
                f"http://127.0.0.1:{peer_port}",
                "--initial-advertise-peer-urls",
                f"http://127.0.0.1:{peer_port}",
                "--initial-cluster",
                f"default=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync",
            ],
        )
        self._spawn(
            "kube-apiserver",
            [
                str(self.assets / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                "--bind-address=127.0.0.1",
                f"--secure-port={api_port}",
                f"--cert-dir={self.dir / 'certs'}",
                f"--token-auth-file={tokens}",
                "--authorization-mode=RBAC",
                "--allow-privileged=true",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--service-account-issuer=https://127.0.0.1",
                f"--service-account-key-file={key}",
                f"--service-account-signing-key-file={key}",
            ],
        )
        admin = tokens.read_text().split(",", 1)[0]
        cluster = Cluster(
            kind="envtest",
            kubeconfig=self.dir / "kubeconfig",
            server=f"https://127.0.0.1:{api_port}",
            admin_token=admin,
            ca_file=self.dir / "certs" / "apiserver.crt",
            kubectl=shutil.which("kubectl") or str(self.assets / "kubectl"),
            tokens_file=tokens,
            instance_dir=self.dir,
        )
        deadline = time.monotonic() + 60
        while (
            not (cluster.ca_file and cluster.ca_file.exists())
            or subprocess.run(
                ["curl", "-sfk", "-H", f"Authorization: Bearer {admin}", f"{cluster.server}/readyz"],
                capture_output=True,
            ).returncode
        ):
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                self.stop()
                pytest.fail(
                    f"envtest binaries in {self.assets} did not start; logs in {self.dir}", pytrace=False
                )
            time.sleep(0.2)
        cluster.kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "envtest",
                    "clusters": [
                        {
                            "name": "envtest",
                            "cluster": {
                                "server": cluster.server,
                                "certificate-authority": str(cluster.ca_file),
                            },
                        }
                    ],
                    "users": [{"name": "admin", "user": {"token": admin}}],
                    "contexts": [{"name": "envtest", "context": {"cluster": "envtest", "user": "admin"}}],
                }
            )
        )
        return cluster

    def _spawn(self, name: str, argv: list[str]) -> None:
        with (self.dir / f"{name}.log").open("wb") as log:
            self.procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir))

    def stop(self) -> None:
        for proc in reversed(self.procs):  # the API server before etcd
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _uses_cluster(item: pytest.Item) -> bool:
    return "cluster" in getattr(item, "fixturenames", ()) or item.get_closest_marker("cluster") is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that use the ``cluster`` fixture are marked ``cluster`` (``-m "not cluster"`` skips them all)."""
    for item in items:
        if "cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.cluster)


_build_error: str | None = None


def pytest_collection_finish(session: pytest.Session) -> None:
    """Builds the testbed before any test runs, so a first build (~5 min) does not eat a test's timeout."""
    global _build_error
    if (
        os.environ.get("KUBECONFIG")
        or os.environ.get("KUBEBUILDER_ASSETS")
        or session.config.option.collectonly
    ):
        return
    if not any(_uses_cluster(item) for item in session.items):
        return
    proc = subprocess.run([str(TESTBED), "build"], capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    if proc.returncode != 0:
        _build_error = f"hack/testbed build exited {proc.returncode}:\n{proc.stderr}{proc.stdout}"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The session's Kubernetes API; see the module docstring for which one and how users work."""
    if os.environ.get("KUBECONFIG"):
        yield _existing_cluster(os.environ["KUBECONFIG"])
        return
    if os.environ.get("KUBEBUILDER_ASSETS"):
        envtest = _Envtest(Path(os.environ["KUBEBUILDER_ASSETS"]), tmp_path_factory.mktemp("envtest"))
        try:
            yield envtest.start()
        finally:
            envtest.stop()
        return
    if _build_error is not None:
        pytest.fail(f"the test control plane could not be built: {_build_error}", pytrace=False)
    instance = tmp_path_factory.mktemp("testbed")
    # Unix socket paths and logs stay short and private; the instance is removed by `down --purge`.
    started = _start_testbed(instance)
    try:
        yield started
    finally:
        subprocess.run(
            [str(TESTBED), "down", "--purge"],
            env=dict(os.environ, VPCEP_TESTBED_DIR=str(instance)),
            capture_output=True,
            timeout=120,
        )


@pytest.fixture(scope="session")
def loopback_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and key for a webhook the API server dials at 127.0.0.1 (SAN IP)."""
    folder = tmp_path_factory.mktemp("webhook-tls")
    cert, key = folder / "tls.crt", folder / "tls.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
