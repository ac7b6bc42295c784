"""Schema changes: generate migrations from the models (``makemigrations``), apply and roll
them back (``migrate``), and check the database against the models.

Migration files import ``datalayer.migration_ops`` (the frozen helper module, public API),
never this package.
"""
