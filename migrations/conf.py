"""pw_migrate configuration, read when it runs with ``--directory migrations``.

``datalayer.models.BaseModel`` is an abstract base, not a table: without this,
``pw_migrate create --auto --auto-source datalayer.models`` offers to create
``base_model``. (``datalayer migrate`` never reads this file.)
"""

IGNORE = ["basemodel"]

# pw_migrate rollback: peewee_migrate 2.3's drop_index cannot skip an index a model
# declared with Model.index() (TypeError: cannot unpack non-iterable ModelIndex object).
try:
    from datalayer.evolve.steps import install_index_fix
except ImportError:  # pw_migrate run without datalayer installed: nothing to fix up
    pass
else:
    install_index_fix()
