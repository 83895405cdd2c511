# monitor: the polling and mailing service in one image.
# docker-compose.yml runs it against PostgreSQL and Mailpit: `docker compose up --build`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Install the package from the build context (psycopg[binary] ships wheels: no compiler needed).
# Only the files the build needs are copied, so editing config/ does not reinstall anything.
COPY pyproject.toml README.md /tmp/monitor-src/
COPY monitor /tmp/monitor-src/monitor
# pip first: older resolvers crash on the two spellings of lxml's html_clean extra in the deps.
RUN pip install --upgrade pip && pip install /tmp/monitor-src && rm -rf /tmp/monitor-src

# Run as an unprivileged user; a numeric UID lets orchestrators verify "not root".
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin monitor

# monitor reads config/monitor.toml relative to its working directory; settings can be
# overridden with MONITOR_<SECTION>_<KEY> variables (see docker-compose.yml).
WORKDIR /app
COPY config/ /app/config/
# var/ holds the signing key of links (web.secret_key_file), and the SQLite database and the mail
# outbox when no PostgreSQL / SMTP is configured; docker-compose.yml makes it a shared volume,
# which starts with this directory's owner.
RUN mkdir -p /app/var && chown 10001:10001 /app/var
USER 10001:10001
# `monitor run --web` and `monitor web` listen here (web.port; web.host must be 0.0.0.0).
EXPOSE 8080

# Create or migrate the database and load config/ first, then exec the command, so that
# `monitor run` is PID 1 and receives SIGTERM itself (it finishes running jobs within
# schedule.shutdown_grace). `docker compose run monitor monitor poll` works the same way.
ENTRYPOINT ["sh", "-c", "monitor init && exec \"$@\"", "monitor-entrypoint"]
CMD ["monitor", "run"]
