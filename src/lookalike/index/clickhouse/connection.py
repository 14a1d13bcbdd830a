"""Connections to ClickHouse: chDB in-process, or a server through clickhouse-driver.

Both give the same four verbs (`query`, `execute`, `insert`, `binder`) and report the engine's
version and functions, so the SQL layer picks expressions by feature, not by backend. Every
failure becomes an `IndexStoreError` naming the index URL and ClickHouse's reason; nothing is
retried silently and no partial answer is returned.

Inserts are columnar: chDB takes an Arrow IPC stream, the driver a Native block built from
NumPy columns. Neither goes row by row.
"""

from __future__ import annotations

import logging
import os
import threading
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from lookalike.errors import IndexStoreError, IndexUnreachableError
from lookalike.index.clickhouse.binding import Binder, ExternalBinder, ParamBinder

Column = npt.NDArray[Any] | Sequence[Any]


class Result:
    """Columns of a query answer, by name: lists, NumPy arrays, or Arrow arrays (chDB), which
    become NumPy without a Python object per value when read with `array`."""

    def __init__(self, columns: Mapping[str, Column]) -> None:
        self._columns = dict(columns)

    def __len__(self) -> int:
        return len(next(iter(self._columns.values()))) if self._columns else 0

    def values(self, name: str) -> list[Any]:
        if not self._columns:  # an answer with no rows may come without its columns
            return []
        column = self._columns[name]
        if isinstance(column, np.ndarray) or hasattr(column, "to_pylist"):
            listed: list[Any] = column.tolist() if isinstance(column, np.ndarray) else column.to_pylist()
            return listed
        return list(column)

    def array(self, name: str, dtype: npt.DTypeLike) -> npt.NDArray[Any]:
        if not self._columns:
            return np.asarray([], dtype=dtype)
        column: Any = self._columns[name]
        if hasattr(column, "to_numpy") and not isinstance(column, np.ndarray) and not column.null_count:
            return np.asarray(column.to_numpy(), dtype=dtype)
        return np.asarray(self.values(name) if hasattr(column, "to_pylist") else column, dtype=dtype)

    def column(self, name: str) -> Any:
        """The column as it came: an Arrow array on chDB (`take` and `nbytes` without a Python
        object per value), else a list or NumPy array."""
        return self._columns[name]

    @classmethod
    def concat(cls, parts: Sequence[Result]) -> Result:
        """The rows of several answers with the same columns, one after another."""
        filled = [part for part in parts if part._columns]
        if not filled:
            return cls({})
        if len(filled) == 1:
            return filled[0]
        names = list(filled[0]._columns)
        if all(hasattr(part._columns[name], "to_numpy") for part in filled for name in names):
            import pyarrow as pa

            return cls({name: pa.concat_arrays([part._columns[name] for part in filled]) for name in names})
        return cls({name: [value for part in filled for value in part.values(name)] for name in names})

    def rows(self) -> list[tuple[Any, ...]]:
        return list(zip(*(self.values(name) for name in self._columns), strict=True))


class Connection(ABC):
    """One open ClickHouse connection (see the module docstring)."""

    url: str
    version: tuple[int, ...]
    functions: frozenset[str]
    last_rows_read: int = 0  # rows the last query read from storage (where the engine says)

    @abstractmethod
    def binder(self) -> Binder: ...

    @abstractmethod
    def query(self, sql: str, binder: Binder | None = None) -> Result: ...

    @abstractmethod
    def execute(self, sql: str, binder: Binder | None = None) -> None: ...

    @abstractmethod
    def insert(self, table: str, columns: Mapping[str, Column], types: Mapping[str, str]) -> None:
        """Insert equal-length columns (name -> values; `types` gives each ClickHouse type)."""

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release the connection."""

    def _probe(self) -> None:
        version = self.query("SELECT version() AS v").values("v")[0]
        self.version = tuple(int(part) for part in str(version).split(".")[:3] if part.isdigit())
        names = self.query(
            "SELECT name FROM system.functions WHERE name IN ('bitCount', 'bitHammingDistance')"
        ).values("name")
        self.functions = frozenset(names)

    def _fail(self, exc: BaseException, sql: str = "") -> IndexStoreError:
        return IndexStoreError(f"{self.url}: {_reason(exc)}")


def _reason(exc: BaseException) -> str:
    """ClickHouse's message without its stack trace ("Code: 47. DB::Exception: ...")."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    message = next((line for line in lines if "Exception" in line), lines[0])
    code = lines[0] if lines[0].startswith("Code:") and lines[0] != message else ""
    return f"{code} {message}".strip()


# ----- chDB ----------------------------------------------------------------------------------------
_CHDB_LOCK = threading.Lock()
_DEFAULT_INSERT_BLOCK = 1_048_449  # ClickHouse's max_insert_block_size


@dataclass
class ChdbSession:
    """One chDB session and what the handles sharing it share."""

    session: Any
    handles: int = 0
    turn: threading.Lock = field(default_factory=threading.Lock)  # one statement at a time
    # what only this process can know about the path (no other process may open it), and the
    # lock that keeps such a fact true while it is used
    facts: dict[str, Any] = field(default_factory=dict)
    facts_lock: threading.RLock = field(default_factory=threading.RLock)


_CHDB_SESSIONS: dict[str, ChdbSession] = {}  # by data path


def chdb_path(url: str) -> str:
    """The data folder of `chdb:///absolute/path` or `chdb://relative/path`."""
    text = url[len("chdb://") :] if url.startswith("chdb://") else url
    if text.startswith("/") and url.startswith("chdb:///"):
        path = text
    else:
        path = text.lstrip("/") if not text.startswith("//") else text[1:]
    if not path:
        raise IndexStoreError(f"{url}: a chdb URL needs a folder, e.g. chdb:///var/lib/lookalike")
    return os.path.abspath(path)


class ChdbConnection(Connection):
    """chDB (ClickHouse as a library). One process may open one data path at a time; handles on
    the same path inside a process share one session, and take turns on it: chDB keeps query
    parameters per session, so two threads' statements at once would swap their values."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = chdb_path(url)
        try:
            from chdb import session as chdb_session
        except ImportError as exc:
            raise IndexStoreError(f"{url}: chDB is not installed; pip install 'lookalike[chdb]'") from exc
        with _CHDB_LOCK:
            shared = _CHDB_SESSIONS.get(self.path)
            if shared is None:
                os.makedirs(self.path, exist_ok=True)
                try:
                    session = chdb_session.Session(self.path)  # type: ignore[no-untyped-call]
                except Exception as exc:
                    others = ", ".join(sorted(_CHDB_SESSIONS)) or "another path"
                    raise IndexStoreError(
                        f"{url}: cannot open (chDB opens one data path per process; {others} is open):"
                        f" {_reason(exc)}"
                    ) from exc
                shared = _CHDB_SESSIONS[self.path] = ChdbSession(session)
            shared.handles += 1
        self.shared = shared
        self._session = shared.session
        self._turn = shared.turn
        self._closed = False
        self._probe()

    def binder(self) -> Binder:
        return ParamBinder()

    def _run(self, sql: str, binder: Binder | None, fmt: str) -> Any:
        if self._closed:
            raise IndexStoreError(f"{self.url}: the index is closed")
        params = binder.params if isinstance(binder, ParamBinder) else None
        try:
            with self._turn:
                return self._session.query(sql, fmt, params=params or None)
        except Exception as exc:
            raise self._fail(exc, sql) from exc

    def query(self, sql: str, binder: Binder | None = None) -> Result:
        import pyarrow as pa

        answer = self._run(sql, binder, "Arrow")
        self.last_rows_read = int(answer.storage_rows_read())
        data = answer.bytes()
        if not data:
            return Result({})
        table = pa.ipc.open_file(pa.BufferReader(data)).read_all()
        return Result({name: table.column(name).combine_chunks() for name in table.column_names})

    def execute(self, sql: str, binder: Binder | None = None) -> None:
        self._run(sql, binder, "CSV")

    def insert(self, table: str, columns: Mapping[str, Column], types: Mapping[str, str]) -> None:
        import pyarrow as pa

        arrays = {name: _arrow_column(values, types[name]) for name, values in columns.items()}
        batch = pa.table(arrays)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_table(batch)
        names = ", ".join(f"`{name}`" for name in columns)
        # No collapsing of equal keys on insert: an insert never holds two rows of one key, and
        # ReplacingMergeTree's pass over the block costs as much as the rest of the insert. One
        # block per insert, also for what the pre-filter view makes of it (5 rows a hash, else
        # cut into ~1M-row parts): one part per table, so merges have less to do.
        block = max(len(batch), _DEFAULT_INSERT_BLOCK)
        statement = (
            f"INSERT INTO {table} ({names}) SETTINGS optimize_on_insert = 0, max_insert_block_size = {block},"
            f" min_insert_block_size_rows = {block * 64}, min_insert_block_size_bytes = {1 << 40}"
        )
        try:
            with self._turn, self._session.send_insert(statement, "ArrowStream") as inserter:
                inserter.append(sink.getvalue().to_pybytes())
                inserter.finish()
        except Exception as exc:
            raise self._fail(exc) from exc

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with _CHDB_LOCK:
            self.shared.handles -= 1
            if self.shared.handles:
                return
            del _CHDB_SESSIONS[self.path]
            self.shared.session.close()


def _arrow_column(values: Column, type_name: str) -> Any:
    import pyarrow as pa

    base = type_name.removeprefix("Nullable(").removesuffix(")")
    arrow_type = {
        "String": pa.string(),
        "UInt8": pa.uint8(),
        "UInt16": pa.uint16(),
        "UInt32": pa.uint32(),
        "UInt64": pa.uint64(),
        "Int16": pa.int16(),
        "Int32": pa.int32(),
        "Int64": pa.int64(),
        "Float64": pa.float64(),
    }[base]
    if isinstance(values, pa.Array):
        return values
    return pa.array(values, type=arrow_type)


# ----- a server through clickhouse-driver ----------------------------------------------------------
@dataclass(frozen=True)
class ServerAddress:
    """Where a `clickhouse://user:password@host:port/database?cluster=NAME&secure=1` URL points."""

    host: str
    port: int
    user: str
    password: str
    database: str
    cluster: str | None
    secure: bool

    @classmethod
    def parse(cls, url: str) -> ServerAddress:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("clickhouse", "clickhouses"):
            raise IndexStoreError(f"{url}: not a clickhouse:// URL")
        options = dict(urllib.parse.parse_qsl(parts.query))
        secure = parts.scheme == "clickhouses" or options.get("secure", "0").lower() in ("1", "true", "yes")
        database = parts.path.strip("/") or "default"
        if not database.replace("_", "").isalnum():
            raise IndexStoreError(f"{url}: database name {database!r} must be letters, digits and _")
        cluster = options.get("cluster") or None
        if cluster is not None and not cluster.replace("_", "").replace("-", "").isalnum():
            raise IndexStoreError(f"{url}: cluster name {cluster!r} must be letters, digits, _ and -")
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or (9440 if secure else 9000),
            user=urllib.parse.unquote(parts.username or "default"),
            password=urllib.parse.unquote(parts.password or ""),
            database=database,
            cluster=cluster,
            secure=secure,
        )

    def redacted(self) -> str:
        """The URL without its password (what error messages show)."""
        query = f"?cluster={self.cluster}" if self.cluster else ""
        return f"clickhouse://{self.user}@{self.host}:{self.port}/{self.database}{query}"


class _WithoutConnectFailures(logging.Filter):
    """clickhouse-driver logs a failed connection attempt, traceback included, then raises; the
    error it raises is what lookalike reports (one line), so the log record only repeats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Failed to connect")


_DRIVER_LOG_FILTER = _WithoutConnectFailures()


class DriverConnection(Connection):
    """A ClickHouse server over the native protocol (clickhouse-driver; works with 18.16 on)."""

    def __init__(self, address: ServerAddress, database: str | None = None) -> None:
        self.address = address
        self.url = address.redacted()
        try:
            from clickhouse_driver import Client
            from clickhouse_driver.errors import NetworkError, SocketTimeoutError
        except ImportError as exc:
            raise IndexStoreError(
                f"{self.url}: clickhouse-driver is not installed; pip install 'lookalike[clickhouse]'"
            ) from exc
        self._unreachable = (NetworkError, SocketTimeoutError)
        driver_log = logging.getLogger("clickhouse_driver.connection")
        if _DRIVER_LOG_FILTER not in driver_log.filters:
            driver_log.addFilter(_DRIVER_LOG_FILTER)
        self._client = Client(
            host=address.host,
            port=address.port,
            user=address.user,
            password=address.password,
            database=database if database is not None else address.database,
            secure=address.secure,
            connect_timeout=5,
            send_receive_timeout=300,
            # inserts into a Distributed table wait for every shard (an error, not a queue);
            # no automatic PREWHERE (18.16 mishandles bound scalars there on a cluster)
            settings={"insert_distributed_sync": 1, "optimize_move_to_prewhere": 0},
        )
        self._probe()

    def binder(self) -> Binder:
        return ExternalBinder()

    def _fail(self, exc: BaseException, sql: str = "") -> IndexStoreError:
        if isinstance(exc, self._unreachable):
            return IndexUnreachableError(f"{self.url}: cannot reach the server: {_reason(exc)}")
        return super()._fail(exc, sql)

    def _run(self, sql: str, binder: Binder | None, **options: Any) -> Any:
        tables = binder.for_driver() if isinstance(binder, ExternalBinder) else None
        try:
            return self._client.execute(sql, external_tables=tables or None, **options)
        except Exception as exc:
            raise self._fail(exc, sql) from exc

    def query(self, sql: str, binder: Binder | None = None) -> Result:
        answer = self._run(sql, binder, columnar=True, with_column_types=True)
        data, column_types = answer
        progress = getattr(self._client.last_query, "progress", None)
        self.last_rows_read = int(getattr(progress, "rows", 0) or 0)
        names = [name for name, _ in column_types]
        if not data:
            return Result({name: [] for name in names})
        return Result(dict(zip(names, data, strict=True)))

    def execute(self, sql: str, binder: Binder | None = None) -> None:
        self._run(sql, binder)

    def insert(self, table: str, columns: Mapping[str, Column], types: Mapping[str, str]) -> None:
        names = ", ".join(f"`{name}`" for name in columns)
        data = [_driver_column(values) for values in columns.values()]
        try:
            self._client.execute(f"INSERT INTO {table} ({names}) VALUES", data, columnar=True)
        except Exception as exc:
            raise self._fail(exc) from exc

    def cluster_hosts(self, cluster: str) -> list[tuple[str, int]]:
        """(host, native port) of every replica of every shard of `cluster`."""
        binder = self.binder()
        name = binder.scalar("cluster", "String", cluster)
        result = self.query(
            f"SELECT host_address, port FROM system.clusters WHERE cluster = {name}"
            " ORDER BY shard_num, replica_num",
            binder,
        )
        return [(str(h), int(p)) for h, p in result.rows()]

    def on_host(self, host: str, port: int, database: str | None = None) -> DriverConnection:
        """A connection to another server of the cluster with the same credentials."""
        address = ServerAddress(
            host,
            port,
            self.address.user,
            self.address.password,
            self.address.database,
            None,
            self.address.secure,
        )
        return DriverConnection(address, database)

    def close(self) -> None:
        self._client.disconnect()


def _driver_column(values: Column) -> list[Any]:
    if isinstance(values, np.ndarray):
        listed: list[Any] = values.tolist()
        return listed
    if hasattr(values, "to_pylist"):
        converted: list[Any] = values.to_pylist()
        return converted
    return list(values)


@contextmanager
def closing(connection: Connection) -> Iterator[Connection]:
    try:
        yield connection
    finally:
        connection.close()
