"""Two ClickHouse server processes on loopback, configured as one 2-shard cluster, for tests.

The server is Debian's `clickhouse-server` (installed with apt-get when missing). Each process
gets free ports and its own folder under a temporary directory; `stop()` ends both (and is what
the fixture calls, also when a test fails).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SERVER = "/usr/sbin/clickhouse-server"
CLUSTER = "lookalike_test"


class Unavailable(Exception):
    """No ClickHouse server can be had here: it is not installed and apt-get is not available."""


def ensure_server_installed() -> str:
    """The server binary, installing Debian's package first if it is missing."""
    found = shutil.which("clickhouse-server") or (SERVER if os.path.exists(SERVER) else None)
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        raise Unavailable("clickhouse-server is not installed and apt-get is not available")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt, "install", "-y", "-q", "clickhouse-server"]
    if subprocess.run(install, env=env, capture_output=True, timeout=900).returncode != 0:
        subprocess.run([apt, "update", "-q"], env=env, capture_output=True, timeout=600)
        done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(f"apt-get install clickhouse-server failed: {done.stderr.strip()[-300:]}")
    if not os.path.exists(SERVER):
        raise RuntimeError(f"clickhouse-server installed but {SERVER} is missing")
    return SERVER


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(folder: Path, tcp_port: int, http_port: int, interserver_port: int, shards: list[int]) -> str:
    replicas = "".join(
        f"<shard><replica><host>127.0.0.1</host><port>{port}</port></replica></shard>" for port in shards
    )
    return f"""<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><log>{folder}/server.log</log><errorlog>{folder}/error.log</errorlog></logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>{tcp_port}</tcp_port>
    <http_port>{http_port}</http_port>
    <interserver_http_port>{interserver_port}</interserver_http_port>
    <path>{folder}/data/</path>
    <tmp_path>{folder}/tmp/</tmp_path>
    <user_files_path>{folder}/user_files/</user_files_path>
    <format_schema_path>{folder}/format_schemas/</format_schema_path>
    <users_config>users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mark_cache_size>268435456</mark_cache_size>
    <max_concurrent_queries>50</max_concurrent_queries>
    <remote_servers><{CLUSTER}>{replicas}</{CLUSTER}></remote_servers>
</yandex>
"""


_USERS = """<?xml version="1.0"?>
<yandex>
    <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
    <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
        <profile>default</profile><quota>default</quota></default></users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
        <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
    </interval></default></quotas>
</yandex>
"""


@dataclass
class Server:
    folder: Path
    tcp_port: int
    process: subprocess.Popen[bytes] | None = None

    def start(self, binary: str) -> None:
        log = open(self.folder / "stdout.log", "ab")  # noqa: SIM115 - the process owns it
        self.process = subprocess.Popen(
            [binary, f"--config-file={self.folder / 'config.xml'}"],
            cwd=self.folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"clickhouse-server exited: {self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.tcp_port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"clickhouse-server on port {self.tcp_port} did not start: {self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log_tail(self) -> str:
        for name in ("error.log", "stdout.log"):
            path = self.folder / name
            if path.exists() and path.stat().st_size:
                return path.read_text(errors="replace")[-800:]
        return "(no log)"


@dataclass
class Cluster:
    """Two shards, each one server process; `url(database)` is a lookalike URL for the cluster."""

    root: Path
    servers: list[Server] = field(default_factory=list)

    @classmethod
    def start(cls, root: Path) -> Cluster:
        binary = ensure_server_installed()
        cluster = cls(root)
        ports = [free_port() for _ in range(2)]
        try:
            for number, tcp_port in enumerate(ports):
                folder = root / f"shard{number + 1}"
                for sub in ("data", "tmp", "user_files", "format_schemas"):
                    (folder / sub).mkdir(parents=True, exist_ok=True)
                (folder / "config.xml").write_text(_config(folder, tcp_port, free_port(), free_port(), ports))
                (folder / "users.xml").write_text(_USERS)
                server = Server(folder, tcp_port)
                server.start(binary)
                cluster.servers.append(server)
            for server in cluster.servers:
                server.wait_ready()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def url(self, database: str, shard: int = 0) -> str:
        return f"clickhouse://default:@127.0.0.1:{self.servers[shard].tcp_port}/{database}?cluster={CLUSTER}"

    def single_url(self, database: str, shard: int = 0) -> str:
        return f"clickhouse://default:@127.0.0.1:{self.servers[shard].tcp_port}/{database}"

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
