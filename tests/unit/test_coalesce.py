"""Shared writes (vpcep.runtime.coalesce), as the gateway ingress policy uses them (R42): a burst of endpoints
in one namespace costs a couple of policy writes, and none is answered by a write that read the ledger before
its own ports were in it."""

from __future__ import annotations

import asyncio

import pytest

from vpcep.runtime.coalesce import Coalescer


class Policy:
    """A stand-in for one namespace's policy: `ledger` is what callers put in, `written` what a run wrote."""

    def __init__(self) -> None:
        self.ledger: set[int] = set()
        self.written: set[int] = set()
        self.runs = 0

    async def write(self) -> None:
        self.runs += 1
        snapshot = set(self.ledger)  # read the state, then take a while to write it
        await asyncio.sleep(0.05)
        self.written = snapshot


def test_a_burst_of_callers_shares_two_writes_and_each_sees_its_own_port_written() -> None:
    async def burst() -> Policy:
        shared: Coalescer[str] = Coalescer()
        policy = Policy()

        async def endpoint(port: int, delay: float) -> None:
            await asyncio.sleep(delay)
            policy.ledger.add(port)
            await shared.run("tenant-a", policy.write)
            assert port in policy.written, f"port {port} answered by a write that did not include it"

        await asyncio.gather(*(endpoint(port, 0.001 * port) for port in range(20)))
        return policy

    policy = asyncio.run(burst())
    assert policy.runs <= 3, f"{policy.runs} writes for one burst"
    assert policy.written == set(range(20))


def test_keys_do_not_wait_for_each_other() -> None:
    async def two_namespaces() -> tuple[float, float]:
        shared: Coalescer[str] = Coalescer()
        loop = asyncio.get_running_loop()
        started = loop.time()

        async def slow() -> None:
            await asyncio.sleep(0.5)

        async def fast() -> None:
            return None

        slow_run = asyncio.create_task(shared.run("a", slow))
        await asyncio.sleep(0)
        await shared.run("b", fast)
        fast_done = loop.time() - started
        await slow_run
        return fast_done, loop.time() - started

    fast_done, slow_done = asyncio.run(two_namespaces())
    assert fast_done < 0.25 <= slow_done


def test_a_failed_write_fails_its_callers_and_the_next_one_runs_again() -> None:
    async def failing_then_working() -> list[str]:
        shared: Coalescer[str] = Coalescer()
        outcomes: list[str] = []
        attempts = 0

        async def flaky() -> None:
            nonlocal attempts
            attempts += 1
            await asyncio.sleep(0.01)
            if attempts == 1:
                raise RuntimeError("API said no")

        for _ in range(2):
            try:
                await shared.run("a", flaky)
                outcomes.append("written")
            except RuntimeError as error:
                outcomes.append(str(error))
        return outcomes

    assert asyncio.run(failing_then_working()) == ["API said no", "written"]


def test_a_cancelled_caller_leaves_the_write_to_the_others() -> None:
    async def cancel_one() -> Policy:
        shared: Coalescer[str] = Coalescer()
        policy = Policy()
        policy.ledger.add(1)
        impatient = asyncio.create_task(shared.run("a", policy.write))
        patient = asyncio.create_task(shared.run("a", policy.write))
        await asyncio.sleep(0.01)
        impatient.cancel()
        await patient
        with pytest.raises(asyncio.CancelledError):
            await impatient
        return policy

    assert asyncio.run(cancel_one()).written == {1}
