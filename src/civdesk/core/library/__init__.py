"""The library database: tables, the Database (engine, sessions, migrations), the queries."""

from civdesk.core.library.db import (
    CorruptDatabase,
    Database,
    DatabaseProblem,
    ForeignDatabase,
    MigrationFailed,
    NewerDatabase,
)
from civdesk.core.library.migrations import SCHEMA_VERSION, Migration
from civdesk.core.library.repository import (
    UNKNOWN_TYPE,
    Library,
    LibraryEntry,
    LocalFile,
    UpdateInfo,
)

__all__ = [
    "SCHEMA_VERSION",
    "UNKNOWN_TYPE",
    "CorruptDatabase",
    "Database",
    "DatabaseProblem",
    "ForeignDatabase",
    "Library",
    "LibraryEntry",
    "LocalFile",
    "Migration",
    "MigrationFailed",
    "NewerDatabase",
    "UpdateInfo",
]
