"""The long-running service: which job runs when. No business logic lives here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from jinja2 import Environment
from pydantic import BaseModel
from sqlalchemy import Engine
from starlette.types import ASGIApp

from monitor.delivery.render import load_templates
from monitor.errors import ConfigError, MonitorError
from monitor.models import utcnow
from monitor.operations import (
    build_daily_report,
    config_paths,
    fetch_pages,
    host_limits,
    last_full_day,
    poll_feeds,
    prepare_pool,
    prune_articles,
    retag_pending_topics,
    send_digests,
    send_outbox,
    sync_config,
)
from monitor.settings import Settings, load_settings

log = logging.getLogger(__name__)
Stamp = tuple[int, int] | tuple[tuple[str, int, int], ...] | None
# Settings read once, when the service starts: a change to them waits for a restart.
RESTART_SETTINGS = (
    ("database", None),
    ("web", None),
    ("files", None),
    ("schedule", "tick"),
    ("schedule", "worker_id"),
    ("fetch", "parse_processes"),
    ("reports", "timezone"),
    ("reports", "build_at"),
    ("retention", "prune_at"),
    ("retention", "enabled"),
)


class ConfigWatcher:
    """Notices when configuration files (or the files of a directory) changed since the last
    look."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self._seen = self._stamps()

    def _stamps(self) -> dict[Path, Stamp]:
        return {path: _stamp(path) for path in self.paths}

    def changed(self) -> bool:
        """Whether any file changed, appeared or vanished since the previous call."""
        stamps = self._stamps()
        changed, self._seen = stamps != self._seen, stamps
        return changed


def _stamp(path: Path) -> Stamp:
    """Modification time and size of a file, or of every file in a directory (None: absent)."""
    try:
        if path.is_dir():
            return tuple(
                sorted(
                    (child.name, stat.st_mtime_ns, stat.st_size)
                    for child in path.iterdir()
                    if child.is_file() and (stat := child.stat())
                )
            )
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def live_settings(current: Settings, fresh: Settings) -> tuple[Settings, list[str]]:
    """``fresh`` with the settings read only at start kept as in ``current``; the names of
    those that changed (they apply after a restart)."""
    waiting: list[str] = []
    sections: dict[str, BaseModel] = {}
    for name, key in RESTART_SETTINGS:
        old: BaseModel = getattr(current, name)
        new: BaseModel = sections.get(name, getattr(fresh, name))
        if key is None:
            if old != new:
                waiting.append(name)
                sections[name] = old
        elif getattr(old, key) != getattr(new, key):
            waiting.append(f"{name}.{key}")
            sections[name] = new.model_copy(update={key: getattr(old, key)})
    return fresh.model_copy(update=sections), waiting


class Service:
    """Polls due feeds and sends due digests on every tick until asked to stop.

    Configuration edits are picked up on the next tick: ``monitor.toml``, the feeds, topics and
    subscriptions files, and the templates. A broken edit is logged once, and what was in
    force before stays in force.
    """

    def __init__(
        self, engine: Engine, settings: Settings, *, templates: Environment | None = None
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.watcher = ConfigWatcher(config_paths(settings))
        self.settings_watcher = ConfigWatcher(
            [settings.config_path] if settings.config_path is not None else []
        )
        self.template_watcher = ConfigWatcher([settings.config_file(settings.files.templates)])
        self.templates = templates if templates is not None else load_templates(settings)
        self._running: set[asyncio.Task[None]] = set()
        # One pool for the life of the service: its worker processes start once, not per tick.
        self.pool = prepare_pool(settings)
        # Feed polls and article pages share each host's slots; pages keep their pace per host.
        self.hosts = host_limits(settings)

    async def poll_tick(self) -> None:
        """Refresh every feed whose next check time has come."""
        if self.settings_watcher.changed():
            self._reload_settings()
        if self.watcher.changed():
            await asyncio.to_thread(self._reload_config)
        results = await poll_feeds(
            self.engine, self.settings, due_only=True, pool=self.pool, hosts=self.hosts
        )
        if results:
            counts = Counter(result.status.value for result in results)
            log.info(
                "poll tick feeds=%d %s new=%d matches=%d",
                len(results),
                " ".join(f"{status}={n}" for status, n in sorted(counts.items())),
                sum(r.new_articles for r in results),
                sum(r.matches for r in results),
            )

    async def pages_tick(self) -> None:
        """Fetch the due article pages, store their bodies and retag on the full text.

        A job of its own beside the poll: a site with many pages waits on its own pace, and
        feeds stay polled on time meanwhile.
        """
        results = await fetch_pages(self.engine, self.settings, pool=self.pool, hosts=self.hosts)
        if results:
            counts = Counter(result.outcome.value for result in results)
            log.info(
                "pages tick pages=%d %s new_matches=%d",
                len(results),
                " ".join(f"{outcome}={n}" for outcome, n in sorted(counts.items())),
                sum(r.new_matches for r in results),
            )

    async def digest_tick(self) -> None:
        """Plan the digests that are due and send whatever the outbox holds.

        Instant subscriptions are planned on every tick, so a match reaches them within one
        tick of being stored (``schedule.tick``), all of a tick's news in one e-mail.
        """
        if self.template_watcher.changed():
            self._reload_templates()
        report = await send_digests(self.engine, self.settings, scheduled=True, env=self.templates)
        if report.sent or report.retrying or report.failed:
            log.info(
                "digest tick sent=%d retrying=%d failed=%d",
                len(report.sent),
                len(report.retrying),
                len(report.failed),
            )

    async def retag_tick(self) -> None:
        """Retag the recent articles of topics whose query changed, off the event loop."""
        done = await asyncio.to_thread(
            retag_pending_topics, self.engine, self.settings, now=utcnow()
        )
        for slug, matched in done.items():
            log.info("topic retagged topic=%s matches=%d", slug, matched)

    async def report_tick(self) -> None:
        """Build and store the daily report of the local day that just ended."""
        now = utcnow()
        day = last_full_day(now, self.settings.reports.timezone)
        built = await asyncio.to_thread(
            build_daily_report, self.engine, self.settings, day=day, now=now, email=True
        )
        log.info(
            "report built day=%s spikes=%d feed_problems=%d reviewers=%d planned=%d",
            day.isoformat(),
            len(built.report.spikes),
            built.report.health.problems,
            len(built.email.recipients),
            built.planned,
        )
        if built.planned:
            # Sent now rather than at the next digest tick: reviewers start their day with it.
            sent = await send_outbox(self.engine, self.settings, env=self.templates)
            log.info(
                "outbox sent=%d retrying=%d failed=%d",
                len(sent.sent),
                len(sent.retrying),
                len(sent.failed),
            )

    async def prune_tick(self) -> None:
        """Remove articles past retention, keeping their keys (the daily prune job)."""
        result = await asyncio.to_thread(
            prune_articles, self.engine, self.settings, now=datetime.now(UTC)
        )
        if result.articles or result.bands:
            log.info(
                "prune articles=%d matched=%d stories=%d bands=%d",
                result.articles,
                result.matched,
                result.stories,
                result.bands,
            )

    def _reload_settings(self) -> None:
        path = self.settings.config_path
        try:
            fresh = load_settings(path)
        except ConfigError as exc:
            log.error("settings not reloaded, keeping the previous ones: %s", exc)
            return
        self.settings, waiting = live_settings(self.settings, fresh)
        log.info("settings reloaded from %s", path)
        if waiting:
            log.warning("settings changed that apply after a restart: %s", ", ".join(waiting))

    def _reload_templates(self) -> None:
        try:
            templates = load_templates(self.settings)
        except ConfigError as exc:
            log.error("templates not reloaded, keeping the previous ones: %s", exc)
            return
        self.templates = templates
        log.info(
            "templates reloaded from %s", self.settings.config_file(self.settings.files.templates)
        )

    def _reload_config(self) -> None:
        try:
            sync_config(self.engine, self.settings, now=utcnow())
        except MonitorError as exc:
            log.error("configuration not reloaded, keeping the previous one: %s", exc)
        else:
            log.info("configuration reloaded from %s", self.settings.config_dir)

    def _add_daily(
        self,
        scheduler: AsyncIOScheduler,
        name: str,
        job: Callable[[], Awaitable[None]],
        at: str,
        zone: ZoneInfo,
    ) -> None:
        """Run ``job`` once a day at local time ``at`` (HH:MM) in ``zone``."""
        hour, minute = (int(part) for part in at.split(":"))
        scheduler.add_job(
            self._guarded(name, job),
            "cron",
            hour=hour,
            minute=minute,
            timezone=zone,
            id=name,
            name=name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )

    def _guarded(
        self, name: str, job: Callable[[], Awaitable[None]]
    ) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            task = asyncio.current_task()
            if task is not None:
                self._running.add(task)
            try:
                await job()
            except MonitorError as exc:
                log.error("%s failed: %s", name, exc)
            except Exception:  # one bad tick must not stop the service
                log.exception("%s crashed", name)
            finally:
                if task is not None:
                    self._running.discard(task)

        return run

    async def run(self, stop: asyncio.Event) -> None:
        """Run the jobs until ``stop`` is set, then let running jobs finish (within the grace)."""
        tick = self.settings.schedule.tick.total_seconds()
        now = datetime.now(UTC)
        scheduler = AsyncIOScheduler(timezone=UTC)
        for job_id, job, delay in (
            ("poll", self.poll_tick, 0.0),
            ("pages", self.pages_tick, min(1.0, tick / 8)),
            ("retag", self.retag_tick, min(2.0, tick / 4)),
            ("digests", self.digest_tick, min(5.0, tick / 2)),
        ):
            scheduler.add_job(
                self._guarded(job_id, job),
                "interval",
                seconds=tick,
                id=job_id,
                name=job_id,
                next_run_time=now + timedelta(seconds=delay),
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
            )
        zone = ZoneInfo(self.settings.reports.timezone)
        self._add_daily(scheduler, "report", self.report_tick, self.settings.reports.build_at, zone)
        retention = self.settings.retention
        if retention.enabled:
            self._add_daily(scheduler, "prune", self.prune_tick, retention.prune_at, zone)
        scheduler.start()
        log.info(
            "monitor running: tick=%ss database=%s",
            f"{tick:g}",
            self.engine.url.render_as_string(hide_password=True),
        )
        try:
            await stop.wait()
        finally:
            scheduler.pause()
            await self._drain()
            scheduler.shutdown(wait=False)
            await self.pool.close()
            log.info("monitor stopped")

    async def _drain(self) -> None:
        running = set(self._running)
        if not running:
            return
        grace = self.settings.schedule.shutdown_grace.total_seconds()
        log.info("waiting up to %gs for %d running job(s)", grace, len(running))
        _, pending = await asyncio.wait(running, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signals to the service, which stops it with the rest."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Install nothing: SIGINT and SIGTERM belong to ``run_service``."""
        yield


async def _serve_web(
    app: ASGIApp, settings: Settings, stop: asyncio.Event, on_started: Callable[[], None] | None
) -> None:
    server = _QuietServer(
        uvicorn.Config(app, host=settings.web.host, port=settings.web.port, log_level="info")
    )
    serving = asyncio.create_task(server.serve())
    stopped = asyncio.create_task(stop.wait())
    if on_started is not None:
        # Told only once the socket listens, so the address printed is one that answers.
        while not (server.started or serving.done() or stop.is_set()):
            await asyncio.sleep(0.05)
        if server.started:
            on_started()
    await asyncio.wait({serving, stopped}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stopped.cancel()
    await serving


async def run_service(
    engine: Engine,
    settings: Settings,
    *,
    web: ASGIApp | None = None,
    templates: Environment | None = None,
    on_started: Callable[[], None] | None = None,
) -> None:
    """Run the service until SIGINT or SIGTERM; with ``web``, serve it on web.host:web.port too
    (``on_started`` is called once it listens)."""
    with _stop_on_signals() as stop:
        service = Service(engine, settings, templates=templates)
        if web is None:
            await service.run(stop)
        else:
            await asyncio.gather(service.run(stop), _serve_web(web, settings, stop, on_started))


async def run_web(
    web: ASGIApp, settings: Settings, *, on_started: Callable[[], None] | None = None
) -> None:
    """Serve the web app alone until SIGINT or SIGTERM, then stop as the service does (exit 0)."""
    with _stop_on_signals() as stop:
        await _serve_web(web, settings, stop, on_started)


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[asyncio.Event]:
    """An event set by SIGINT or SIGTERM while the block runs."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        yield stop
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
