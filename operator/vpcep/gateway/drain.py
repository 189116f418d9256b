"""A terminating gateway's drain (R52): the order of its steps and their deadlines.

On SIGTERM the agent reports ``draining`` in its status at once; the operator removes the gateway's address
from every consumer EndpointSlice and keeps it in R21's cap share (vpcep.state.fleet). HAProxy keeps accepting
for ``leave_s`` -- connections kube-proxy still sends here while it catches up with the slices -- then stops
listening (a soft stop) and its open sessions may go on for ``sessions_s``; what is still open after that is
cut. The chart's terminationGracePeriodSeconds is ``leave_s + sessions_s`` plus a margin, and the HAProxy
container's preStop hook waits the same ``leave_s`` before its soft stop (vpcep.gateway.haproxy_container).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class GatewayDrain:
    def __init__(
        self, leave_s: float, sessions_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.leave_s = leave_s
        self.sessions_s = sessions_s
        self._clock = clock
        self._lock = threading.Lock()
        self.started: float | None = None
        self.reported = False  # the agent has logged it and sent the draining report
        self.listening = True  # HAProxy still accepts new connections

    def begin(self) -> None:
        """Called from the signal handler; a second call changes nothing."""
        with self._lock:
            if self.started is None:
                self.started = self._clock()

    def elapsed(self) -> float:
        return 0.0 if self.started is None else self._clock() - self.started

    def stop_listening_due(self) -> bool:
        """True once, when the leave delay is over: the moment HAProxy is to stop accepting."""
        if self.started is None or not self.listening or self.elapsed() < self.leave_s:
            return False
        self.listening = False
        return True

    def overdue(self) -> bool:
        """The sessions' drain period is spent."""
        return self.started is not None and self.elapsed() >= self.leave_s + self.sessions_s
