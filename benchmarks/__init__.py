"""Throughput benchmarks for monitor: ``python -m benchmarks [poll] [parse] [match] [store]``.

They measure and print figures; they assert nothing about timing. The feed corpus is read from
``../shared/corpus`` (or ``$MONITOR_CORPUS``) and served from 127.0.0.1; nothing else is
contacted but the PostgreSQL at ``$MONITOR_BENCH_POSTGRES_URL`` (default: the test database on
127.0.0.1), used only when it is reachable, in a schema created and dropped for the run.
"""
