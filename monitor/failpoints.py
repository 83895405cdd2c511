"""Failpoints: named places where a process can be made to die, to test crash safety for real.

Set ``MONITOR_FAILPOINT`` to one of the names below and the process kills itself with SIGKILL
when it reaches that place: no ``finally``, no flush, no SMTP QUIT, as a power cut would. The
crash tests (``tests/delivery/test_crash_safety.py``) restart the process afterwards and check
that nothing was lost. Unset (always, in normal use), a failpoint costs one dictionary lookup.

``before-outbox-commit``  a digest's delivery and items are written but not committed
``before-smtp``           a delivery is committed and claimed, its message not yet sent
``after-smtp``            the server accepted the message; it is not yet marked sent
``before-channel-send``   a channel delivery is committed and claimed, not yet sent
``after-channel-send``    the channel (a webhook, an Apprise service) took the delivery; it is
                          not yet marked sent
``before-write-commit``   a batch of the ingest writer (articles, their index rows, matches)
                          is written but not committed
"""

from __future__ import annotations

import os
import signal

FAILPOINT_ENV = "MONITOR_FAILPOINT"
FAILPOINTS = frozenset(
    {
        "before-outbox-commit",
        "before-smtp",
        "after-smtp",
        "before-channel-send",
        "after-channel-send",
        "before-write-commit",
    }
)


def failpoint(name: str) -> None:
    """Kill this process at once (SIGKILL) when ``MONITOR_FAILPOINT`` names this point."""
    if os.environ.get(FAILPOINT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
