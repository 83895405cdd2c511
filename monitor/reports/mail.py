"""Daily reports by e-mail: one outbox delivery per reviewer and day, sent like a digest.

Reviewers are named in ``reports.reviewers``. Each gets a subscriber row (so the outbox, its
leases, retries and failure reasons serve reports too) and, per day, one delivery whose period
key is ``report:<day>``: building the day again updates the stored report but plans nothing new,
so nobody is sent a day twice. The message is made at send time from the stored report.
"""

from __future__ import annotations

from datetime import date, datetime
from email.message import EmailMessage

from sqlmodel import Session, col, select

from monitor.db import dialect_insert
from monitor.delivery.digest import new_message_id
from monitor.delivery.render import address_domain, build_report_message
from monitor.delivery.subscriptions import check_email, get_subscriber
from monitor.errors import PermanentDeliveryError
from monitor.models import Delivery, DeliveryStatus, Subscriber
from monitor.reports.store import get_report
from monitor.settings import Settings
from monitor.untrusted import strip_controls

REPORT_PERIOD = "report:"


def report_period_key(day: date) -> str:
    """The outbox period key of the report of ``day``."""
    return f"{REPORT_PERIOD}{day.isoformat()}"


def is_report_delivery(period_key: str) -> bool:
    """Whether a delivery carries a daily report rather than a digest."""
    return period_key.startswith(REPORT_PERIOD)


def plan_report_deliveries(
    session: Session, settings: Settings, *, day: date, now: datetime
) -> list[int]:
    """A pending delivery of ``day``'s report to each reviewer, in the caller's transaction;
    the ids of those planned now (a reviewer already planned for that day is skipped)."""
    planned = []
    domain = address_domain(settings.mail.from_address)
    for address in dict.fromkeys(check_email(a) for a in settings.reports.reviewers):
        reviewer = _reviewer(session, address, settings.reports.timezone, now)
        inserted = session.execute(
            dialect_insert(session, Delivery)
            .values(
                subscriber_id=reviewer,
                period_key=report_period_key(day),
                status=DeliveryStatus.PENDING,
                message_id=new_message_id(domain),
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["subscriber_id", "period_key"])
            .returning(col(Delivery.id))
        ).scalar()
        if inserted is not None:
            planned.append(inserted)
    return planned


def _reviewer(session: Session, address: str, timezone: str, now: datetime) -> int:
    existing = get_subscriber(session, address)
    if existing is not None and existing.id is not None:
        return existing.id
    session.execute(
        dialect_insert(session, Subscriber)
        .values(email=address, name="", timezone=timezone, notify_empty=False, created_at=now)
        .on_conflict_do_nothing(index_elements=["email"])
    )
    return session.exec(select(Subscriber.id).where(Subscriber.email == address)).one() or 0


def report_message(session: Session, delivery: Delivery, settings: Settings) -> EmailMessage:
    """The e-mail of a report delivery, from the report as stored now."""
    day = date.fromisoformat(delivery.period_key.removeprefix(REPORT_PERIOD))
    report = get_report(session, day)
    if report is None:
        raise PermanentDeliveryError(f"the report of {day} is no longer stored")
    reviewer = session.get(Subscriber, delivery.subscriber_id)
    assert reviewer is not None  # a foreign key
    mail = settings.mail
    return build_report_message(
        subject=report.subject or f"[monitor] Daily report, {day:%A %d %B %Y}",
        # Built from stored feed text: no control, escape or bidi override reaches the reader.
        text=strip_controls(report.text),
        html=strip_controls(report.email_html or report.html),
        to_address=reviewer.email,
        from_address=mail.from_address,
        from_name=mail.from_name,
        reply_to=mail.reply_to,
        message_id=delivery.message_id,
        created_at=delivery.created_at,
    )
