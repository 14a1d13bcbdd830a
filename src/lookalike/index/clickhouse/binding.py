"""Bound values for ClickHouse statements: hash values, keys and radii never enter the SQL text.

A `Binder` collects the values one statement needs and hands back the SQL fragment that refers to
each. Two ways exist, chosen by the connection:

- `ParamBinder`: ClickHouse query parameters `{name:Type}` (chDB; servers >= 19.11), the values
  sent apart from the SQL in ClickHouse's text format for that type.
- `ExternalBinder`: external data (temporary tables sent with the query over the native
  protocol; every server version has them, and they travel to every shard of a Distributed query).
  Debian's 18.16 server has no query parameters, so this is how clickhouse-driver binds.

Both give a scalar, an array and a small table ("query table": one row per query or probe).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_SCALAR_TYPES = re.compile(r"^(U?Int(8|16|32|64)|Float64|String)$")


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"not a bind name: {name!r}")
    return name


def _check_type(type_name: str) -> str:
    if not _SCALAR_TYPES.match(type_name):
        raise ValueError(f"unsupported bound type: {type_name!r}")
    return type_name


def _quoted(value: str) -> str:
    """A string in ClickHouse's quoted text format (inside an array parameter)."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\t", "\\t").replace("\n", "\\n")
    return "'" + escaped.replace("\r", "\\r").replace("\0", "\\0") + "'"


def _escaped(value: str) -> str:
    """A string in ClickHouse's escaped text format (a scalar String parameter)."""
    escaped = value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    return escaped.replace("\r", "\\r").replace("\0", "\\0")


def _text(value: Any, type_name: str) -> str:
    if type_name == "String":
        return _escaped(str(value))
    if type_name == "Float64":
        return repr(float(value))
    return str(int(value))


def _array_text(values: Sequence[Any], type_name: str) -> str:
    if type_name == "String":
        return "[" + ",".join(_quoted(str(v)) for v in values) + "]"
    if type_name == "Float64":
        return "[" + ",".join(repr(float(v)) for v in values) + "]"
    return "[" + ",".join(str(int(v)) for v in values) + "]"


class Binder(ABC):
    """Collects bound values for one statement; each method returns the SQL that refers to it."""

    @abstractmethod
    def scalar(self, name: str, type_name: str, value: Any) -> str:
        """An expression with the value (a constant during the query)."""

    @abstractmethod
    def array(self, name: str, type_name: str, values: Sequence[Any]) -> str:
        """A constant Array(type) expression."""

    @abstractmethod
    def in_set(self, name: str, type_name: str, values: Sequence[Any]) -> str:
        """What goes after `x IN`: a set ClickHouse can use to prune by primary key."""

    @abstractmethod
    def table(self, name: str, columns: Mapping[str, tuple[str, Sequence[Any]]]) -> str:
        """A table expression with these columns (name -> (type, values), equal lengths)."""


@dataclass
class ParamBinder(Binder):
    """Query parameters `{name:Type}`, values in ClickHouse's text formats."""

    params: dict[str, str] = field(default_factory=dict)

    def scalar(self, name: str, type_name: str, value: Any) -> str:
        _check_type(type_name)
        self.params[_check_name(name)] = _text(value, type_name)
        return f"{{{name}:{type_name}}}"

    def array(self, name: str, type_name: str, values: Sequence[Any]) -> str:
        _check_type(type_name)
        self.params[_check_name(name)] = _array_text(values, type_name)
        return f"{{{name}:Array({type_name})}}"

    def in_set(self, name: str, type_name: str, values: Sequence[Any]) -> str:
        return self.array(name, type_name, values)  # a constant array: the key analysis uses it

    def table(self, name: str, columns: Mapping[str, tuple[str, Sequence[Any]]]) -> str:
        _check_name(name)
        joins = ", ".join(
            f"{self.array(f'{name}_{column}', type_name, values)} AS {_check_name(column)}"
            for column, (type_name, values) in columns.items()
        )
        names = ", ".join(columns)
        return f"(SELECT {names} FROM system.one ARRAY JOIN {joins})"


@dataclass
class ExternalTable:
    name: str
    structure: list[tuple[str, str]]
    rows: list[dict[str, Any]]


@dataclass
class ExternalBinder(Binder):
    """External data: each bound value is a small temporary table sent with the query."""

    tables: list[ExternalTable] = field(default_factory=list)

    def _add(self, name: str, columns: Mapping[str, tuple[str, Sequence[Any]]]) -> str:
        table_name = "_" + _check_name(name)
        structure = [(_check_name(c), _check_type(t)) for c, (t, _) in columns.items()]
        lengths = {len(values) for _, values in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of bound table {name!r} differ in length")
        count = lengths.pop() if lengths else 0
        converted = {c: [_python(v, t) for v in values] for c, (t, values) in columns.items()}
        rows = [{c: converted[c][i] for c in converted} for i in range(count)]
        self.tables.append(ExternalTable(table_name, structure, rows))
        return table_name

    def scalar(self, name: str, type_name: str, value: Any) -> str:
        table_name = self._add(name, {"v": (type_name, [value])})
        return f"(SELECT v FROM {table_name})"

    def array(self, name: str, type_name: str, values: Sequence[Any]) -> str:
        table_name = self._add(name, {"i": ("UInt32", range(len(values))), "v": (type_name, values)})
        # an external table has no guaranteed row order; the positions restore it
        return f"(SELECT arrayMap(t -> t.2, arraySort(groupArray((i, v)))) FROM {table_name})"

    def in_set(self, name: str, type_name: str, values: Sequence[Any]) -> str:
        return self._add(name, {"v": (type_name, values)})

    def table(self, name: str, columns: Mapping[str, tuple[str, Sequence[Any]]]) -> str:
        return self._add(name, columns)

    def for_driver(self) -> list[dict[str, Any]]:
        return [{"name": t.name, "structure": t.structure, "data": t.rows} for t in self.tables]


def _python(value: Any, type_name: str) -> Any:
    if type_name == "String":
        return str(value)
    if type_name == "Float64":
        return float(value)
    return int(value)
