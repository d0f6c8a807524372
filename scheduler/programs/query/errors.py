"""Why a query is refused before anything is posted (one line each, the construct named)."""

from __future__ import annotations

from dnode.scheduler.errors import InvalidTaskParams


class QueryError(InvalidTaskParams):
    """Root of every refusal of a SQL query (an InvalidTaskParams: refused before posting)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)

    def __str__(self) -> str:  # the query, not the params envelope, is what the user wrote
        return self.detail


class MalformedSQL(QueryError):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"malformed SQL: {reason}")


class UnsupportedSQL(QueryError):
    """A construct outside the supported subset (named, e.g. 'ORDER BY')."""

    def __init__(self, construct: str) -> None:
        self.construct = construct
        super().__init__(f"unsupported SQL: {construct}")


class UnknownTable(QueryError):
    def __init__(self, table: str, known: list[str]) -> None:
        self.table, self.known = table, known
        super().__init__(f"unknown table {table!r} (known: {', '.join(known) or 'none'})")


class UnknownColumn(QueryError):
    def __init__(self, table: str, column: str, known: list[str]) -> None:
        self.table, self.column, self.known = table, column, known
        super().__init__(
            f"unknown column {column!r} in table {table!r} (columns: {', '.join(known)})"
        )


class TypeMismatch(QueryError):
    """An operation the column's declared type cannot take (AVG of a categorical, ...)."""

    def __init__(self, column: str, detail: str) -> None:
        self.column = column
        super().__init__(f"type mismatch: {detail}")


class JoinRefused(QueryError):
    """A join dnode cannot run privately (not an inner equi-join on identifier columns)."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"join refused: {detail}")
