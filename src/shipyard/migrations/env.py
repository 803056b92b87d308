"""Alembic's environment for shipyard's stores.

Alembic runs this file for every command; :mod:`shipyard.migrations.runner` calls those
commands with the connection to use and the store's version table in the config's attributes,
so no ``alembic.ini`` is needed. It is never imported as a module.
"""

from alembic import context

from shipyard.migrations.runner import run_environment

run_environment(context.config)
