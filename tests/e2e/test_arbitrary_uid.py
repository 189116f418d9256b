"""Any UID (issue 18, healthy defaults): OpenShift's restricted profile runs pods under a random UID with no
passwd entry, where kopf's getpass.getuser() raised KeyError at start. The default install, but for that UID,
starts on a cluster of its own: the operator becomes ready without a restart, its cloud service Available."""

from __future__ import annotations

import pwd
import random
from pathlib import Path
from typing import Any

import pytest
from releases import install_and_run, listen_ports, new_release, status, wait_for

pytestmark = pytest.mark.cluster


def test_an_arbitrary_uid_without_a_passwd_entry_runs_the_operator(
    fresh_cluster: Any, loopback_certificate: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    uid = random.randint(1_000_000_000, 2_000_000_000)
    with pytest.raises(KeyError):
        pwd.getpwuid(uid)
    name, namespace, config = new_release(fresh_cluster, "uid")
    values = listen_ports() | {"podSecurityContext": {"runAsUser": uid, "runAsGroup": uid, "fsGroup": uid}}
    with config:
        release = install_and_run(
            fresh_cluster,
            config,
            name,
            namespace,
            values,
            tmp_path_factory.mktemp("uid"),
            loopback_certificate,
        )
        try:
            assert f"--reuid={uid}" in release.operator.argv[-1]
            wait_for(
                "the dns cloud service to be Available",
                lambda: (
                    status(fresh_cluster, "endpointservices", namespace, "dns").get("phase") == "Available"
                ),
                timeout=60,
                logs=release.kubelet.logs,
            )
            assert release.operator.restarts == 0, release.kubelet.logs()
        finally:
            release.kubelet.stop()
