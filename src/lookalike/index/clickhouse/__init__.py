"""The ClickHouse index: chDB in-process (`chdb:///path`) or a server / cluster
(`clickhouse://user:password@host:port/database[?cluster=NAME&secure=1]`). See docs/clickhouse.md."""

from lookalike.index.clickhouse.index import ClickHouseIndex

__all__ = ["ClickHouseIndex"]
