"""A sender killed with SIGKILL while it sends to channels loses nothing and repeats nothing but
one delivery per channel, with the same idempotency key, when it is started again.

``monitor digest send`` runs as a real process that kills itself at a failpoint
(``MONITOR_FAILPOINT``), then runs again on the same database; two webhook channels on a real
receiver that checks every signature.
"""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from monitor.db import create_db_engine
from monitor.failpoints import FAILPOINT_ENV
from monitor.models import Delivery, DeliveryStatus
from tests.delivery.test_crash_safety import (
    LEASE,
    add_matched_articles,
    run_monitor,
    wait_for_leases_to_expire,
)
from tests.utils.config import ConfigWriter
from tests.utils.hookserver import running_hook_server

pytestmark = pytest.mark.slow
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.mark.parametrize(
    ("failpoint", "most_repeats"),
    [
        # Nothing was committed: planned again from scratch, sent once.
        ("before-outbox-commit", 0),
        # Committed and leased by the dead sender, nothing sent: sent once after.
        ("before-channel-send", 0),
        # The channel took it; the sender died before marking it: it goes again, same key.
        ("after-channel-send", 1),
    ],
)
def test_a_sender_killed_while_sending_to_channels(
    config: ConfigWriter, db_url: str, tmp_path: Path, failpoint: str, most_repeats: int
) -> None:
    with running_hook_server(SECRET) as hooks:
        config.subscribers[0]["channels"] = [
            {"url": hooks.url("/one"), "secret": SECRET},
            {"url": hooks.url("/two"), "secret": SECRET},
        ]
        config.extra_toml = '[channels]\nallow_networks = ["127.0.0.0/8"]\n'
        path = config.write()
        env = {"MONITOR_MAIL_LEASE": LEASE}
        assert run_monitor(path, "init", env=env).returncode == 0
        engine = create_db_engine(db_url)
        try:
            add_matched_articles(engine)

            killed = run_monitor(path, "digest", "send", env={**env, FAILPOINT_ENV: failpoint})

            assert killed.returncode == -signal.SIGKILL, killed.stderr
            wait_for_leases_to_expire(engine)
            restarted = run_monitor(path, "digest", "send", env=env)
            again = run_monitor(path, "digest", "send", env=env)
            assert restarted.returncode == 0, restarted.stderr
            assert (again.returncode, again.stdout) == (0, "nothing new to send\n"), again.stderr
            with Session(engine) as session:
                sent = session.exec(
                    select(Delivery).where(col(Delivery.channel_id).is_not(None))
                ).all()
        finally:
            engine.dispose()
        assert {d.status for d in sent} == {DeliveryStatus.SENT}
        assert len(sent) == 2
        keys = {d.message_id for d in sent}
        for path_ in ("/one", "/two"):
            received = hooks.requests_to(path_)
            assert all(r.verified for r in received), [r.verify_error for r in received]
            ids = Counter(r.headers["webhook-id"] for r in received)
            # One period, one key: at most one repeat of it, never a second key.
            assert len(ids) == 1
            [(key, count)] = ids.items()
            assert key in keys
            assert 1 <= count <= 1 + most_repeats
        total = sum(len(hooks.requests_to(p)) for p in ("/one", "/two"))
        assert (total > 2) == (most_repeats > 0)
