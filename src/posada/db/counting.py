"""Counting database round trips where they happen: in the cursor and the connection.

The pool hands out `CountingConnection`s; every statement a cursor sends, and every
command the connection sends itself (BEGIN, COMMIT, ROLLBACK of `transaction()`), adds
one to the running request's `db_queries` and to its statement-shape tally.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import pq, sql
from psycopg.rows import TupleRow

from posada.core import context


def shape(query: Any) -> str:
    """The statement's text with placeholders: the same shape whatever the parameters."""
    if isinstance(query, str):
        return query
    if isinstance(query, bytes):
        return query.decode(errors="replace")
    if isinstance(query, sql.Composable):
        try:
            return query.as_string()
        except Exception:  # a Composable that needs a connection to render: still a shape
            return repr(query)
    return str(query)


class CountingCursor(psycopg.AsyncCursor[TupleRow]):
    """A cursor that counts each statement it sends."""

    async def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        """Count, then execute."""
        context.count_statement(shape(query))
        return await super().execute(query, params, **kwargs)

    async def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
        """Count once: psycopg pipelines the batch."""
        context.count_statement(shape(query))
        await super().executemany(query, params_seq, **kwargs)

    def stream(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        """Count, then stream."""
        context.count_statement(shape(query))
        return super().stream(query, params, **kwargs)

    def copy(self, statement: Any, params: Any = None, **kwargs: Any) -> Any:
        """Count, then copy."""
        context.count_statement(shape(statement))
        return super().copy(statement, params, **kwargs)


class CountingConnection(psycopg.AsyncConnection[TupleRow]):
    """A connection whose cursors count, and which counts its own commands."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cursor_factory = CountingCursor

    # psycopg sends BEGIN/COMMIT/ROLLBACK through this private generator (pinned
    # psycopg 3.3): counting here is the only way those round trips do not escape.
    def _exec_command(self, command: Any, result_format: pq.Format = pq.Format.TEXT) -> Any:
        context.count_statement(shape(command))
        return super()._exec_command(command, result_format)
