"""Alembic's entry for the portal store's migrations (run through portal/schema.py)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

config = context.config

if context.is_offline_mode():
    # `python -m portal db upgrade --sql`: the SQL for a DBA to review, nothing executed.
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
