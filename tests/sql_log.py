"""Which SQL statements a block of code runs, for tests that bound them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event

from civdesk.core.library.db import Database


class SqlLog:
    """The statements run on a database while the ``with`` block lasts (those containing
    ``text``, when given), and how many rows of parameters each one carried."""

    def __init__(self, db: Database, text: str | None = None) -> None:
        self.engine: Engine = db.engine
        self.text = text
        self.statements: list[str] = []
        self.rows: list[int] = []  # per statement: 1, or the rows of an executemany

    def __enter__(self) -> SqlLog:
        event.listen(self.engine, "before_cursor_execute", self._log)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._log)

    def rows_of(self, prefix: str) -> int:
        """The rows carried by the statements that start with ``prefix``."""
        return sum(rows for statement, rows in zip(self.statements, self.rows, strict=True)
                   if statement.startswith(prefix))

    def _log(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
             executemany: bool) -> None:
        if self.text is None or self.text in statement:
            self.statements.append(statement)
            self.rows.append(len(parameters) if executemany else 1)
