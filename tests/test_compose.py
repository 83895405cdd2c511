"""docker-compose.yml and the Dockerfile: checked by reading them, since no Docker runs here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from sqlalchemy.engine import make_url

from monitor.settings import ENV_PREFIX, Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"


def _compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    return data


def _service(name: str) -> dict[str, Any]:
    service = _compose()["services"][name]
    assert isinstance(service, dict)
    return service


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict, from either the mapping or the list form."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        return dict(item.split("=", 1) for item in raw)
    return {str(name): "" if value is None else str(value) for name, value in raw.items()}


def _published_ports(service: dict[str, Any]) -> set[tuple[int, int]]:
    """(host port, container port) pairs, from the short ("ip:host:container") or long syntax."""
    pairs = set()
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            pairs.add((int(entry["published"]), int(entry["target"])))
            continue
        parts = str(entry).split("/")[0].split(":")
        host = parts[-2] if len(parts) >= 2 else parts[-1]
        pairs.add((int(host), int(parts[-1])))
    return pairs


def _all_environments() -> dict[str, str]:
    merged: dict[str, str] = {}
    for service in _compose()["services"].values():
        merged.update(_environment(service))
    return merged


def test_the_three_services_exist() -> None:
    assert {"postgres", "mailpit", "monitor"} <= set(_compose()["services"])


def test_images() -> None:
    postgres = _service("postgres")["image"]
    assert postgres.split(":")[0] == "postgres"
    assert postgres.split(":")[1].startswith("16")
    assert _service("mailpit")["image"].split(":")[0] == "axllent/mailpit"


@pytest.mark.parametrize(
    ("service", "published", "port"),
    [("postgres", 5433, 5432), ("mailpit", 1025, 1025), ("mailpit", 8025, 8025),
     ("monitor", 8080, 8080)],
)  # fmt: skip
def test_ports(service: str, published: int, port: int) -> None:
    assert (published, port) in _published_ports(_service(service))


# Ports a developer's machine commonly serves already: a local PostgreSQL above all.
HOST_PORTS_IN_USE = {5432}


def test_published_ports_are_local_distinct_and_free_of_a_local_postgresql() -> None:
    published: list[int] = []
    for name, service in _compose()["services"].items():
        for entry in service.get("ports", []):
            text = str(entry["host_ip"] if isinstance(entry, dict) else entry)
            assert text.startswith("127.0.0.1:") or text == "127.0.0.1", (name, entry)
        published.extend(host for host, _ in _published_ports(service))

    assert len(published) == len(set(published)), published
    assert not HOST_PORTS_IN_USE & set(published), published


def test_postgres_has_a_database_a_volume_and_a_healthcheck() -> None:
    postgres = _service("postgres")
    env = _environment(postgres)
    assert env["POSTGRES_USER"] == env["POSTGRES_PASSWORD"] == env["POSTGRES_DB"] == "monitor"
    volumes = [str(v) for v in postgres["volumes"]]
    named = [v.split(":")[0] for v in volumes if v.endswith(":/var/lib/postgresql/data")]
    assert named, volumes
    assert named[0] in (_compose().get("volumes") or {}), "the data volume must be a named one"
    assert "pg_isready" in json.dumps(postgres["healthcheck"]["test"])


def test_monitor_is_built_from_this_directory() -> None:
    build = _service("monitor")["build"]
    context = build if isinstance(build, str) else build["context"]
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert context == "."
    assert (ROOT / context / dockerfile).is_file()


def test_monitor_waits_for_a_healthy_postgres_and_for_mailpit() -> None:
    depends_on = _service("monitor")["depends_on"]
    assert isinstance(depends_on, dict), "the long form is needed to wait for health"
    assert depends_on["postgres"]["condition"] == "service_healthy"
    assert "mailpit" in depends_on
    assert _service("monitor")["restart"] == "unless-stopped"


def test_monitor_uses_the_postgres_service() -> None:
    url = make_url(_environment(_service("monitor"))["MONITOR_DATABASE_URL"])
    postgres_env = _environment(_service("postgres"))
    assert url.get_backend_name() == "postgresql"
    assert url.host == "postgres"
    assert (url.port or 5432) == 5432
    assert url.username == postgres_env["POSTGRES_USER"]
    assert url.password == postgres_env["POSTGRES_PASSWORD"]
    assert url.database == postgres_env["POSTGRES_DB"]


def _monitor_services() -> dict[str, dict[str, Any]]:
    """The services that run monitor: those built from this directory."""
    return {name: s for name, s in _compose()["services"].items() if "build" in s}


def _command(service: dict[str, Any]) -> list[str]:
    """The command a service runs: its own, or the Dockerfile's CMD."""
    command = service.get("command")
    if command is None:
        cmd = _last(_dockerfile_instructions(), "CMD")
        assert cmd is not None
        return _command_words(cmd)
    return command if isinstance(command, list) else str(command).split()


def _service_settings(
    service: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Settings:
    """The settings monitor reads in the service's container (its environment, no toml)."""
    for name, value in _environment(service).items():
        if name.startswith(ENV_PREFIX):
            monkeypatch.setenv(name, value)
    config = tmp_path / "monitor.toml"
    config.write_text("", encoding="utf-8")
    return load_settings(config)


def _serves_web(command: list[str]) -> bool:
    text = " ".join(command)
    return "monitor web" in text or ("monitor run" in text and "--web" in command)


def test_the_web_app_is_served_where_mailed_links_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serving = {n: s for n, s in _monitor_services().items() if _serves_web(_command(s))}
    assert serving, "no service serves the web app (monitor web, or monitor run --web)"
    for name, service in serving.items():
        settings = _service_settings(service, monkeypatch, tmp_path)
        # 127.0.0.1 inside a container is reachable from nowhere else.
        assert settings.web.host == "0.0.0.0", name
        published = {host for host, port in _published_ports(service) if port == settings.web.port}
        assert published, f"{name}: web.port {settings.web.port} is not published"
        base = urlsplit(settings.web.base_url)
        # The links in digests lead to the published port (on this machine, by default).
        assert base.hostname in ("127.0.0.1", "localhost"), settings.web.base_url
        assert base.port in published, settings.web.base_url


def test_workers_scale_without_serving_or_publishing() -> None:
    worker = _service("worker")

    assert not _serves_web(_command(worker))
    assert "monitor run" in " ".join(_command(worker))
    assert not _published_ports(worker), "replicas would collide on a published port"
    assert "container_name" not in worker


def test_every_monitor_container_signs_links_with_one_lasting_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A link signed by one container verifies in the others, and after a rebuild."""
    workdir = _last(_dockerfile_instructions(), "WORKDIR")
    assert workdir is not None
    declared = _compose().get("volumes") or {}
    keys: set[str] = set()
    for name, service in _monitor_services().items():
        settings = _service_settings(service, monkeypatch, tmp_path)
        if settings.web.secret_key:
            keys.add("key:" + settings.web.secret_key)
            continue
        key_dir = (Path(workdir) / settings.web.secret_key_file).parent
        mounts = [str(v).split(":") for v in service.get("volumes", [])]
        holding = [m[0] for m in mounts if len(m) >= 2 and Path(m[1]) == key_dir]
        assert holding, f"{name}: {key_dir} (web.secret_key_file) is not a volume"
        # A named volume outlives containers and images; a bind mount would be a host path.
        assert holding[0] in declared, f"{name}: {holding[0]} is not a named volume"
        keys.add("volume:" + holding[0])
    assert len(keys) == 1, keys


def test_monitor_sends_mail_to_mailpit() -> None:
    env = _environment(_service("monitor"))
    assert env["MONITOR_MAIL_SMTP_HOST"] == "mailpit"
    assert int(env["MONITOR_MAIL_SMTP_PORT"]) == 1025
    assert env["MONITOR_MAIL_SMTP_SECURITY"] == "none"
    assert env["MONITOR_MAIL_TRANSPORT"] == "smtp"


def _setting_for(variable: str) -> tuple[str, str]:
    """The (section, key) a MONITOR_<SECTION>_<KEY> variable names; fail if there is none."""
    section, _, key = variable.removeprefix(ENV_PREFIX).lower().partition("_")
    assert section in Settings.model_fields, f"{variable}: no settings section {section!r}"
    section_model = Settings.model_fields[section].annotation
    assert section_model is not None
    assert key in section_model.model_fields, f"{variable}: no setting {section}.{key}"
    return section, key


def _as_env_text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def test_every_monitor_variable_is_a_setting_monitor_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    variables = {n: v for n, v in _all_environments().items() if n.startswith(ENV_PREFIX)}
    assert variables, "the compose file configures monitor through MONITOR_* variables"
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    config = tmp_path / "monitor.toml"
    config.write_text("", encoding="utf-8")

    settings = load_settings(config)

    for name, value in variables.items():
        section, key = _setting_for(name)
        assert _as_env_text(getattr(getattr(settings, section), key)) == value, name
    assert settings.mail.uses_smtp()


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def _command_words(arguments: str) -> list[str]:
    """The words of an exec-form (JSON array) or shell-form CMD / ENTRYPOINT."""
    if arguments.startswith("["):
        words = json.loads(arguments)
        assert isinstance(words, list)
        return [str(word) for word in words]
    return ["/bin/sh", "-c", arguments]


def _last(instructions: list[tuple[str, str]], keyword: str) -> str | None:
    found = [arguments for name, arguments in instructions if name == keyword]
    return found[-1] if found else None


def test_dockerfile_runs_monitor_init_then_monitor_run_as_a_user() -> None:
    instructions = _dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    assert _last(instructions, "WORKDIR") == "/app"
    assert any(name == "COPY" and "config" in args for name, args in instructions)
    assert any(name == "RUN" and "pip install" in args for name, args in instructions)
    user = _last(instructions, "USER")
    assert user is not None
    assert user.split(":")[0] not in ("root", "0")

    entrypoint = _last(instructions, "ENTRYPOINT")
    cmd = _last(instructions, "CMD")
    assert cmd is not None
    words = (_command_words(entrypoint) if entrypoint else []) + _command_words(cmd)
    command = " ".join(words)
    assert "monitor init" in command, command
    assert "monitor run" in command[command.index("monitor init") :], command


def test_dockerignore_keeps_local_state_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".venv", "var", ".git"} <= set(ignored)
