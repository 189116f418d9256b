"""Fixtures for the gateway unit tests."""

from __future__ import annotations

import shutil

import pytest

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


@pytest.fixture
def haproxy_binary() -> str:
    if not shutil.which(HAPROXY):
        pytest.fail("haproxy is not installed (apt-get install haproxy); the gateway needs it")
    return HAPROXY
