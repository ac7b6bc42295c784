"""Migrations of the datalayer schema, run by peewee-migrate (shipped as datalayer.migrations)."""
