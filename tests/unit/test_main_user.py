"""A UID with no passwd entry (OpenShift's random UIDs) gets a user name before kopf asks (issue 18)."""

from __future__ import annotations

import getpass
import os
import pwd

import pytest

from vpcep.main import name_an_unnamed_user


def _no_passwd_entry(uid: int) -> pwd.struct_passwd:
    raise KeyError(f"getpwuid(): uid not found: {uid}")


def test_a_uid_without_passwd_entry_is_named_through_user(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(pwd, "getpwuid", _no_passwd_entry)
    with pytest.raises((KeyError, OSError)):  # KeyError up to Python 3.12 (Debian 12), OSError from 3.13 (13)
        getpass.getuser()  # what kopf's start met
    name_an_unnamed_user()
    assert getpass.getuser() == f"uid-{os.getuid()}"


def test_a_named_user_keeps_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "alice")
    name_an_unnamed_user()
    assert os.environ["USER"] == "alice"
