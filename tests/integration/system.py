"""The whole system for integration tests: real Kafka, PostgreSQL and SMTP sink, the four
services and the gateway, started with the same scripts as `make run` on test ports.

Where the infrastructure comes from, in order:
1. the environment: ESPACE_TEST_KAFKA_BOOTSTRAP and ESPACE_TEST_DB_URL_PREFIX (a database URL
   without the database name; the four databases must exist);
2. testcontainers, when a Docker engine answers;
3. local processes (deploy/local): Kafka from its Maven Central jars, PostgreSQL from the
   machine's binaries, the SMTP sink. This is what CI uses.
The SMTP sink is always the local one: tests read the messages it writes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / "deploy" / "local"

# Test ports stay clear of `make run`'s; ESPACE_TEST_PORT_OFFSET lets several runs share a machine.
_OFFSET = int(os.environ.get("ESPACE_TEST_PORT_OFFSET", "0"))
TEST_PORTS = {
    name: str(port + _OFFSET)
    for name, port in {
        "GATEWAY_PORT": 28000,
        "IDENTITY_PORT": 28001,
        "NOTIFICATIONS_PORT": 28002,
        "DOCUMENTS_PORT": 28003,
        "CLAIMS_PORT": 28004,
        "WEB_PORT": 28005,
        "KAFKA_PORT": 29092,
        "KAFKA_CONTROLLER_PORT": 29093,
        "PG_PORT": 57432,
        "SMTP_PORT": 12025,
        "CLAMD_PORT": 13310,
    }.items()
}


# Settings of the test system that differ from the defaults. Every test comes from 127.0.0.1, and
# the API fuzz alone sends thousands of requests a minute to the rate-limited routes: the per-IP
# limit (300/60 by default) is raised so that what a test meets is the per-account limit (left at
# its default, 20/60, which a test checks) and identity's own throttles, not its neighbours' load.
TEST_SETTINGS = {
    "GATEWAY_RATE_LIMIT_PER_IP": "100000/60",
    # web renews an access token this long before it expires (900 s): after 5 s here, so the
    # browser tests go through the transparent refresh instead of waiting a quarter of an hour.
    "WEB_REFRESH_MARGIN_S": "895",
}


def _run(args: list[str], env: dict[str, str], timeout: float = 300) -> None:
    result = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


def docker_available() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@dataclass
class System:
    env: dict[str, str]
    mode: str
    _containers: list = field(default_factory=list)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.env['GATEWAY_PORT']}"

    @property
    def mail_dir(self) -> Path:
        return Path(self.env["ESPACE_VAR"]) / "mail"

    @property
    def kafka_bootstrap(self) -> str:
        return self.env["KAFKA_BOOTSTRAP"]

    @property
    def log_dir(self) -> Path:
        return Path(self.env["ESPACE_VAR"]) / "log"

    def metrics_url(self, service: str) -> str:
        """Where `service` (or the gateway) serves Prometheus metrics: its port + 200."""
        return f"http://127.0.0.1:{int(self.env[f'{service.upper()}_PORT']) + 200}/metrics"

    def db_url(self, service: str) -> str:
        return f"{self.env['ESPACE_DB_URL_PREFIX']}/{service}"

    @property
    def can_stop_kafka(self) -> bool:
        return self.mode in ("local", "docker")

    # -- life cycle -------------------------------------------------------------------------
    @classmethod
    def start(cls, state: str = "test", extra_env: dict[str, str] | None = None) -> System:
        """`state` names the folder under var/ (wiped first); `extra_env` tunes the services."""
        var = ROOT / "var" / (f"{state}-{_OFFSET}" if _OFFSET else state)
        shutil.rmtree(var, ignore_errors=True)  # a fresh state: a second run behaves as the first
        env = {
            **os.environ,
            **TEST_PORTS,
            **TEST_SETTINGS,
            "ESPACE_VAR": str(var),
            "PYTHON": sys.executable,
            **(extra_env or {}),
        }
        if os.environ.get("ESPACE_TEST_KAFKA_BOOTSTRAP") and os.environ.get("ESPACE_TEST_DB_URL_PREFIX"):
            system = cls(env, "environment")
            env["KAFKA_BOOTSTRAP"] = os.environ["ESPACE_TEST_KAFKA_BOOTSTRAP"]
            env["ESPACE_DB_URL_PREFIX"] = os.environ["ESPACE_TEST_DB_URL_PREFIX"]
        elif docker_available():
            system = cls(env, "docker")
            system._start_containers()
        else:
            system = cls(env, "local")
            env["KAFKA_BOOTSTRAP"] = f"127.0.0.1:{env['KAFKA_PORT']}"
            env["ESPACE_DB_URL_PREFIX"] = f"postgresql+asyncpg://espace:espace@127.0.0.1:{env['PG_PORT']}"
        try:
            if system.mode == "local":
                _run([str(LOCAL / "postgres.sh"), "start"], env)
                _run([str(LOCAL / "kafka.sh"), "start"], env)
            _run([str(LOCAL / "smtp.sh"), "start"], env)
            _run([str(LOCAL / "clamav.sh"), "start"], env)
            _run([sys.executable, "-m", "shared.platform.topics", "--bootstrap", env["KAFKA_BOOTSTRAP"]], env)
            _run([str(LOCAL / "services.sh"), "start"], env, timeout=180)
        except BaseException:
            system.stop()
            raise
        return system

    def stop(self) -> None:
        errors = []
        steps = [[str(LOCAL / "services.sh"), "stop"], [str(LOCAL / "smtp.sh"), "stop"], [str(LOCAL / "clamav.sh"), "stop"]]
        if self.mode == "local":
            steps += [[str(LOCAL / "kafka.sh"), "stop"], [str(LOCAL / "postgres.sh"), "stop"]]
        for step in steps:
            try:
                _run(step, self.env, timeout=120)
            except Exception as exc:  # keep stopping the rest
                errors.append(exc)
        for container in reversed(self._containers):
            container.stop()
        if errors:
            raise errors[0]

    # -- outages ----------------------------------------------------------------------------
    def stop_kafka(self) -> None:
        if self.mode == "local":
            _run([str(LOCAL / "kafka.sh"), "stop"], self.env)
        else:
            self._containers[0].get_wrapped_container().pause()

    def start_kafka(self) -> None:
        if self.mode == "local":
            _run([str(LOCAL / "kafka.sh"), "start"], self.env)
        else:
            self._containers[0].get_wrapped_container().unpause()

    def stop_smtp(self) -> None:
        _run([str(LOCAL / "smtp.sh"), "stop"], self.env)

    def start_smtp(self) -> None:
        _run([str(LOCAL / "smtp.sh"), "start"], self.env)

    def stop_clamav(self) -> None:
        _run([str(LOCAL / "clamav.sh"), "stop"], self.env)

    def start_clamav(self) -> None:
        _run([str(LOCAL / "clamav.sh"), "start"], self.env)

    # -- testcontainers ---------------------------------------------------------------------
    def _start_containers(self) -> None:
        from testcontainers.kafka import KafkaContainer
        from testcontainers.postgres import PostgresContainer

        kafka = KafkaContainer("apache/kafka:4.1.1").with_kraft()
        kafka.start()
        self._containers.append(kafka)
        postgres = PostgresContainer("postgres:15", username="espace", password="espace", dbname="identity")
        postgres.start()
        self._containers.append(postgres)
        for database in ("notifications", "documents", "claims"):
            postgres.exec(["psql", "-U", "espace", "-d", "identity", "-c", f"CREATE DATABASE {database}"])
        host, port = postgres.get_container_host_ip(), postgres.get_exposed_port(5432)
        self.env["ESPACE_DB_URL_PREFIX"] = f"postgresql+asyncpg://espace:espace@{host}:{port}"
        self.env["KAFKA_BOOTSTRAP"] = kafka.get_bootstrap_server()
