"""A labeling project's durable store: SQLAlchemy tables, Alembic migrations, repository functions."""

from activelabel.store.db import Store, open_store, sqlite_url

__all__ = ["Store", "open_store", "sqlite_url"]
