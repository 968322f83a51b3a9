"""CLIENT spans for SQL statements, under the span of the request that runs them.

Two ways in: `trace_engine(engine)` hooks SQLAlchemy's cursor events, so every
statement SQLAlchemy executes gets a span; `start_statement(conn, sql)` times a
statement run on the driver's cursor directly (the hot path does that). Either way
a statement outside a recording request span costs one context lookup and makes
no span; transaction control (BEGIN, COMMIT, ROLLBACK) makes none either.

Span shape per the OpenTelemetry database conventions: named by the query summary
(`SELECT accounts`, `INSERT payments`), with `db.system.name`, `db.namespace`,
`db.operation.name`, `db.collection.name` (one table only), `db.query.summary` and
`db.query.text`: the statement as written, with its placeholders. Parameter values
are never recorded, and a failed statement records the error's type, not its
message (which can quote values).
"""

from __future__ import annotations

import re
import time
from pathlib import PurePath
from types import MappingProxyType
from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util import types
from sqlalchemy import Connection, Engine, event

from instrumentation.spans import RecordingSpan, qualified_name, recording_parent

_SYSTEMS = {"sqlite": "sqlite", "postgresql": "postgresql"}
_TRANSACTION_CONTROL = frozenset({"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"})
_OPERATIONS = frozenset(
    {"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "CREATE", "ALTER", "DROP", "TRUNCATE", "PRAGMA", "CALL"}
    | _TRANSACTION_CONTROL
)
_TARGET_BEFORE = frozenset({"FROM", "INTO", "UPDATE", "JOIN", "TABLE", "INDEX"})
_TARGET_QUALIFIERS = frozenset({"IF", "NOT", "EXISTS", "ONLY", "LATERAL", "UNIQUE"})
_KEYWORDS = _OPERATIONS | _TARGET_BEFORE | _TARGET_QUALIFIERS | {"SET", "WHERE", "VALUES", "AS", "ON", "USING"}
_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|[A-Za-z_][A-Za-z0-9_$]*(?:\.[A-Za-z_\"][A-Za-z0-9_$\"]*)*|\S")
# The names a WITH clause gives its subqueries: not tables.
_CTE_NAME = re.compile(r"(?i)(?:\bWITH(?:\s+RECURSIVE)?|,)\s*\"?(\w+)\"?\s+AS\s*(?:NOT\s+)?(?:MATERIALIZED\s*)?\(")
_MAX_SUMMARY = 255
_MAX_SHAPES = 1024
_CONTEXT_KEY = "_nova_statement_span"
_time_ns = time.time_ns


class Shape:
    """The span a statement makes, worked out once per statement text."""

    __slots__ = ("attributes", "name")

    def __init__(self, name: str, attributes: dict[str, types.AttributeValue]) -> None:
        self.name = name
        # Shared by every span of the statement, so never to change.
        self.attributes = MappingProxyType(attributes)


class DatabaseSpans:
    """The statement shapes of one database (one engine)."""

    def __init__(self, system: str, namespace: str | None, server: tuple[str, int] | None = None) -> None:
        self.system = system
        self._common: dict[str, types.AttributeValue] = {"db.system.name": system}
        if namespace:
            self._common["db.namespace"] = namespace
        if server is not None:
            self._common["server.address"], self._common["server.port"] = server
        self._shapes: dict[str, Shape | None] = {}

    @classmethod
    def of_engine(cls, engine: Engine) -> DatabaseSpans:
        url = engine.url
        system = _SYSTEMS.get(engine.dialect.name, "other_sql")
        if system == "sqlite":
            database = url.database or ""
            namespace = PurePath(database).name if database and database != ":memory:" else None
            return cls(system, namespace)
        server = (url.host, url.port or 5432) if url.host else None
        return cls(system, url.database, server)

    def shape(self, statement: str) -> Shape | None:
        """None for transaction control, which makes no span."""
        try:
            return self._shapes[statement]
        except KeyError:
            pass
        shape = self._shape(statement)
        if len(self._shapes) < _MAX_SHAPES:
            self._shapes[statement] = shape
        return shape

    def _shape(self, statement: str) -> Shape | None:
        operations, targets, summary = summarise(statement)
        if operations and operations[0] in _TRANSACTION_CONTROL:
            return None
        attributes = dict(self._common)
        attributes["db.query.text"] = statement
        if summary:
            attributes["db.query.summary"] = summary
        if operations:
            attributes["db.operation.name"] = operations[0]
        if len(set(targets)) == 1:
            attributes["db.collection.name"] = targets[0]
        return Shape(summary or self.system, attributes)


class StatementSpan:
    """A statement being timed; `end` adds its span to the request's."""

    __slots__ = ("_parent", "_shape", "_start")

    def __init__(self, parent: RecordingSpan, shape: Shape) -> None:
        self._parent = parent
        self._shape = shape
        self._start = _time_ns()

    def end(self, error: BaseException | None = None) -> None:
        shape = self._shape
        if error is None:
            self._parent.add_finished_child(shape.name, SpanKind.CLIENT, shape.attributes, self._start, _time_ns())
            return
        attributes = dict(shape.attributes)
        attributes["error.type"] = error_type = qualified_name(type(error))
        code = _sqlstate(error)
        if code:
            attributes["db.response.status_code"] = code
        self._parent.add_finished_child(
            shape.name,
            SpanKind.CLIENT,
            MappingProxyType(attributes),
            self._start,
            _time_ns(),
            Status(StatusCode.ERROR, error_type),
        )


class _NoStatement:
    """What `start_statement` returns when no span is made."""

    __slots__ = ()

    def end(self, error: BaseException | None = None) -> None:
        pass


NO_STATEMENT = _NoStatement()
# Kept on the engine itself: it lives exactly as long, and costs one attribute read per statement.
_ENGINE_ATTRIBUTE = "_nova_database_spans"


def start_statement(conn: Connection, statement: str) -> StatementSpan | _NoStatement:
    """Start timing `statement` on `conn` if a recording span is current; call `end` when it ran."""
    parent = recording_parent()
    if parent is None:
        return NO_STATEMENT
    shape = _spans_of(conn.engine).shape(statement)
    if shape is None:
        return NO_STATEMENT
    return StatementSpan(parent, shape)


def trace_engine(engine: Engine) -> DatabaseSpans:
    """Make a span of every statement `engine` executes through SQLAlchemy (once per engine)."""
    if not event.contains(engine, "before_cursor_execute", _before_execute):
        event.listen(engine, "before_cursor_execute", _before_execute)
        event.listen(engine, "after_cursor_execute", _after_execute)
        event.listen(engine, "handle_error", _on_error)
    return _spans_of(engine)


def summarise(statement: str) -> tuple[list[str], list[str], str]:
    """The operations and tables of a SQL statement in order, and its low-cardinality summary.

    `WITH moved AS (UPDATE accounts …) SELECT …` -> (["UPDATE", "SELECT"], ["accounts"], "UPDATE accounts SELECT")
    """
    subqueries = {name.upper() for name in _CTE_NAME.findall(statement)}
    operations: list[str] = []
    targets: list[str] = []
    parts: list[str] = []
    expecting_target = False
    for token in _TOKEN.findall(statement):
        upper = token.upper()
        if expecting_target:
            if upper in _TARGET_QUALIFIERS:
                continue
            expecting_target = False
            if upper not in _KEYWORDS and (token[0].isalpha() or token[0] in '_"'):
                target = token.replace('"', "")
                if target.upper() not in subqueries:
                    targets.append(target)
                    parts.append(target)
                continue
        if upper in _OPERATIONS:
            operations.append(upper)
            if not parts or parts[-1] != upper:
                parts.append(upper)
        if upper in _TARGET_BEFORE:
            expecting_target = True
    summary = " ".join(parts)
    if len(summary) > _MAX_SUMMARY:
        summary = summary[:_MAX_SUMMARY].rsplit(" ", 1)[0]
    return operations, targets, summary


def _spans_of(engine: Engine) -> DatabaseSpans:
    spans: DatabaseSpans | None = getattr(engine, _ENGINE_ATTRIBUTE, None)
    if spans is None:
        spans = DatabaseSpans.of_engine(engine)
        setattr(engine, _ENGINE_ATTRIBUTE, spans)
    return spans


def _before_execute(
    conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    if context is None:
        return
    span = start_statement(conn, statement)
    if span is not NO_STATEMENT:
        setattr(context, _CONTEXT_KEY, span)


def _after_execute(
    conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    span = getattr(context, _CONTEXT_KEY, None)
    if span is not None:
        delattr(context, _CONTEXT_KEY)
        span.end()


def _on_error(exception_context: Any) -> None:
    context = exception_context.execution_context
    span = getattr(context, _CONTEXT_KEY, None)
    if span is not None:
        delattr(context, _CONTEXT_KEY)
        span.end(exception_context.original_exception)


def _sqlstate(error: BaseException) -> str | None:
    code = getattr(error, "sqlstate", None) or getattr(getattr(error, "orig", None), "sqlstate", None)
    return code if isinstance(code, str) else None
