"""Network namespaces, veth pairs and processes inside them, for the data-plane tests.

Three namespaces per topology: a consumer, a gateway and a provider. The consumer and the
provider are each wired only to the gateway, which does not forward packets; the only way
from one to the other is through HAProxy. Names carry the pid and a random tag so parallel
runs never collide, and ``destroy`` removes everything ``create`` made.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pathlib
import secrets
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL("libc.so.6", use_errno=True)

CONSUMER_NET = "10.61.1"  # consumer <-> gateway
PROVIDER_NET = "10.61.2"  # gateway <-> provider
# The same range on both sides, each side's own "VPC" (R20).
OVERLAP_NET = "172.30.0"


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check)


REQUIRE_NETNS_VARIABLE = "VPCEP_REQUIRE_NETNS"


def netns_supported() -> str | None:
    """None if ``ip netns`` works here, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"vpcep-probe-{os.getpid()}-{secrets.token_hex(2)}"
    result = sh("ip", "netns", "add", probe, check=False)
    if result.returncode != 0:
        return f"'ip netns add' is forbidden here: {result.stderr.strip()}"
    sh("ip", "netns", "del", probe, check=False)
    return None


def require_netns(what: str) -> None:
    """Skip ``what`` (with a loud warning) where network namespaces cannot be made, or FAIL it when
    ``VPCEP_REQUIRE_NETNS=1`` (.ci/run sets it): a run that sent no real TCP must not count as green."""
    reason = netns_supported()
    if reason is None:
        return
    why = f"{reason}. They need root and 'ip netns'."
    if os.environ.get(REQUIRE_NETNS_VARIABLE) == "1":
        pytest.fail(
            f"{what} CANNOT RUN: {why} {REQUIRE_NETNS_VARIABLE}=1 requires them (.ci/run sets it)",
            pytrace=False,
        )
    message = f"{what} SKIPPED: {why}"
    warnings.warn(message, stacklevel=2)
    print(f"\n*** {message} ***\n", file=sys.stderr)
    pytest.skip(message)


@contextlib.contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Run the block (this thread only) inside netns ``name``; sockets made here stay in it."""
    with open("/proc/thread-self/ns/net") as home, open(f"/var/run/netns/{name}") as target:
        if _libc.setns(target.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {name} failed")
        try:
            yield
        finally:
            if _libc.setns(home.fileno(), CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back home failed")


@dataclass
class Topology:
    tag: str
    consumer: str
    gateway: str
    provider: str

    consumer_ip: str = f"{CONSUMER_NET}.2"
    consumer_other_ip: str = f"{CONSUMER_NET}.3"  # a second source, for R34
    gateway_consumer_ip: str = f"{CONSUMER_NET}.1"
    gateway_provider_ip: str = f"{PROVIDER_NET}.1"
    provider_ip: str = f"{PROVIDER_NET}.2"
    overlap_ip: str = f"{OVERLAP_NET}.10"

    @classmethod
    def create(cls) -> Topology:
        tag = f"{os.getpid() % 100000}{secrets.token_hex(2)}"
        topology = cls(tag, f"vpcep-c-{tag}", f"vpcep-g-{tag}", f"vpcep-p-{tag}")
        try:
            topology._build()
        except BaseException:
            topology.destroy()
            raise
        return topology

    def _build(self) -> None:
        for ns in (self.consumer, self.gateway, self.provider):
            sh("ip", "netns", "add", ns)
            self.ip(ns, "link", "set", "lo", "up")
        self._veth(
            f"c{self.tag}",
            self.consumer,
            f"{self.consumer_ip}/24",
            f"gc{self.tag}",
            f"{self.gateway_consumer_ip}/24",
        )
        self.ip(self.consumer, "addr", "add", f"{self.consumer_other_ip}/24", "dev", f"c{self.tag}")
        self._veth(
            f"p{self.tag}",
            self.provider,
            f"{self.provider_ip}/24",
            f"gp{self.tag}",
            f"{self.gateway_provider_ip}/24",
        )
        # Overlapping ranges: both the consumer and the provider own 172.30.0.10 (R20).
        # (On lo: this kernel has no dummy interfaces.)
        for ns in (self.consumer, self.provider):
            self.ip(ns, "addr", "add", f"{self.overlap_ip}/24", "dev", "lo")
        self.ip(self.gateway, "route", "add", f"{OVERLAP_NET}.0/24", "via", self.provider_ip)
        # The gateway is no router: packets are never forwarded between the two sides.
        sh("ip", "netns", "exec", self.gateway, "sysctl", "-qw", "net.ipv4.ip_forward=0")

    def _veth(self, inner: str, inner_ns: str, inner_ip: str, outer: str, outer_ip: str) -> None:
        sh("ip", "link", "add", inner, "type", "veth", "peer", "name", outer)
        sh("ip", "link", "set", inner, "netns", inner_ns)
        sh("ip", "link", "set", outer, "netns", self.gateway)
        self.ip(inner_ns, "addr", "add", inner_ip, "dev", inner)
        self.ip(self.gateway, "addr", "add", outer_ip, "dev", outer)
        self.ip(inner_ns, "link", "set", inner, "up")
        self.ip(self.gateway, "link", "set", outer, "up")

    def ip(self, ns: str, *args: str) -> None:
        sh("ip", "-n", ns, *args)

    def destroy(self) -> None:
        for ns in (self.consumer, self.gateway, self.provider):
            # Processes still inside would keep the namespace alive: end ours first.
            pids = sh("ip", "netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), 9)
            sh("ip", "netns", "del", ns, check=False)


def haproxy_in_netns(folder: pathlib.Path, ns: str) -> pathlib.Path:
    """An executable that runs HAProxy inside network namespace `ns`: what a gateway agent under test is given
    as `--haproxy`, so the proxy it drives listens where a gateway pod's would."""
    wrapper = folder / f"haproxy-in-{ns}"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {ns} haproxy "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def spawn(
    ns: str, argv: Sequence[str], env: dict[str, str] | None = None, **kwargs: object
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["ip", "netns", "exec", ns, *argv], env=env, **kwargs)  # type: ignore[call-overload]


def connect(ns: str, host: str, port: int, timeout: float = 2.0, source: str | None = None) -> socket.socket:
    with in_netns(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        if source:
            sock.bind((source, 0))
        try:
            sock.connect((host, port))
        except BaseException:
            sock.close()
            raise
    return sock


def listen(ns: str, host: str, port: int) -> socket.socket:
    with in_netns(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(64)
    return sock


def wait_until(
    predicate: object, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():  # type: ignore[operator]
                return
        except Exception as error:
            last_error = error
        time.sleep(interval)
    raise AssertionError(
        f"timed out waiting for {what}" + (f" (last error: {last_error!r})" if last_error else "")
    )
