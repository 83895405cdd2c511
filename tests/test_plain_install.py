"""A plain ``pip install .`` (no extras) into a fresh virtual environment runs every command.

The dev extra brings packages (datasketch brings numpy) that a plain install, and so the Docker
image, does not have; a module importing one of them works in ``.venv`` and dies everywhere
else. This test installs the package as the Dockerfile does (the same files copied, no extras),
imports every module of ``monitor`` in that environment, then runs ``monitor init`` and a poll
of a feed served on 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from monitor.db import create_db_engine
from monitor.models import Article
from tests.utils.config import ConfigWriter, fixture_feed
from tests.utils.feedserver import FeedServer

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
# What the Dockerfile copies into the image before its `pip install`.
SOURCES = ("pyproject.toml", "README.md", "monitor")
# Imports every module of the package, so one the commands below do not reach is checked too;
# and finds every absolute import in every file (those inside functions too, which an import of
# the module does not run) and checks that the environment can resolve it.
IMPORT_ALL = """
import ast, importlib, importlib.util, pathlib, pkgutil, monitor
# Scripts, not modules: python -m monitor runs the CLI, Alembic runs env.py with a connection.
SCRIPTS = {"monitor.__main__", "monitor.migrations.env"}
names = sorted(m.name for m in pkgutil.walk_packages(monitor.__path__, "monitor."))
for name in names:
    if name not in SCRIPTS:
        importlib.import_module(name)
wanted = set()
for path in pathlib.Path(monitor.__file__).parent.rglob("*.py"):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            wanted.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            wanted.add(node.module.split(".")[0])
missing = sorted(n for n in wanted if importlib.util.find_spec(n) is None)
assert not missing, f"imported but not installed by a plain install: {missing}"
print(len(names), "modules", len(wanted), "packages")
"""


def _run(args: list[str], *, cwd: Path, timeout: float, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, cwd=cwd,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert result.returncode == 0, (
        f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout[-3000:]}"
        f"\n{result.stderr[-3000:]}"
    )
    return result.stdout


@pytest.fixture(scope="module")
def plain_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment holding monitor installed without extras; its bin/."""
    base = tmp_path_factory.mktemp("plain-install")
    source = base / "src"
    source.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    venv = base / "venv"
    # The base interpreter, not .venv's: nothing of the dev environment is visible in there.
    python = getattr(sys, "_base_executable", sys.executable)
    _run([python, "-m", "venv", str(venv)], cwd=base, timeout=120)
    # Only the MONITOR_* variables are cleared: pip keeps its own configuration (index, cache).
    # As the Dockerfile does, pip is brought up to date first: older resolvers (pip 23) crash on
    # the two spellings of lxml's html_clean extra that trafilatura and justext ask for.
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    _run([*pip, "--upgrade", "pip"], cwd=base, timeout=300)
    _run([*pip, str(source)], cwd=base, timeout=900)
    return venv / "bin"


def test_the_dev_environment_is_not_visible(plain_venv: Path) -> None:
    out = _run(
        [str(plain_venv / "python"), "-c", "import sys; print(sys.prefix)"],
        cwd=plain_venv, timeout=60,
    )  # fmt: skip
    assert Path(out.strip()) == plain_venv.parent
    # pytest (dev extra) is not installed there: the environment is really without extras.
    probe = subprocess.run(
        [str(plain_venv / "python"), "-c", "import pytest"], capture_output=True, timeout=60
    )
    assert probe.returncode != 0


def test_every_module_imports_without_extras(plain_venv: Path) -> None:
    out = _run([str(plain_venv / "python"), "-c", IMPORT_ALL], cwd=plain_venv, timeout=300)

    assert int(out.split()[0]) > 50, out


def test_init_and_a_poll_run_without_extras(
    plain_venv: Path, config: ConfigWriter, feed_server: FeedServer, tmp_path: Path
) -> None:
    config.feeds = [feed_server.add("/world.rss", fixture_feed("world.rss"))]
    path = config.write()
    monitor = str(plain_venv / "monitor")

    init = _run([monitor, "--config", str(path), "init"], cwd=tmp_path, timeout=300)
    poll = _run([monitor, "--config", str(path), "poll"], cwd=tmp_path, timeout=300)
    listed = _run([monitor, "--config", str(path), "articles", "list"], cwd=tmp_path, timeout=300)

    rows = [line for line in poll.splitlines() if line.startswith("│")]
    cells = rows[-1].replace("│", " ").split()
    engine = create_db_engine(config.database_url)
    try:
        with Session(engine) as session:
            stored = session.exec(select(func.count()).select_from(Article)).one()
    finally:
        engine.dispose()
    assert "feeds" in init
    assert feed_server.hits["/world.rss"] == 1
    # The summary row: feeds, ok, not modified, failed, new articles, matches.
    assert cells[:4] == ["1", "1", "0", "0"], poll
    assert stored == int(cells[4]) > 0
    assert f"{stored} articles" in listed
