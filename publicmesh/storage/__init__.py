"""Storage (ground layer): the stores' engines, one per store, SQLite files embedded or PostgreSQL databases at
scale; one upsert; bulk row writes (storage.bulk) and columnar reads into Arrow (storage.columnar), each with an
embedded and a scale-out form. What differs between the backends is chosen here, by the engine's dialect.

The package itself loads no Arrow: bulk and columnar are imported by the parts that use them."""

from publicmesh.storage.engines import (
    bulk_cache,
    database_name,
    drop_store,
    engine_for,
    is_postgres,
    lock_for_schema_change,
    schema_once,
    sqlite_path,
)
from publicmesh.storage.upsert import insert_tuples, upsert

__all__ = [
    "bulk_cache",
    "database_name",
    "drop_store",
    "engine_for",
    "insert_tuples",
    "is_postgres",
    "lock_for_schema_change",
    "schema_once",
    "sqlite_path",
    "upsert",
]
