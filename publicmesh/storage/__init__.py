"""Storage (ground layer): the stores' engines, one per store, SQLite files embedded or PostgreSQL databases at
scale; columnar reads into Arrow and bulk row writes, each with an embedded and a scale-out form."""

from publicmesh.storage.engines import bulk_cache, database_name, drop_store, engine_for, is_postgres, schema_once

__all__ = ["bulk_cache", "database_name", "drop_store", "engine_for", "is_postgres", "schema_once"]
