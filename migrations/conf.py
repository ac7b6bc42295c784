"""pw_migrate configuration, read when it runs with ``--directory migrations``.

``datalayer.models.BaseModel`` is an abstract base, not a table: without IGNORE,
peewee_migrate's own generator offers to create ``base_model``. ``create --auto`` is
routed to ``datalayer makemigrations`` (the same file, server defaults and index names
kept), and ``migrate`` / ``rollback`` run with datalayer's fixes to peewee_migrate 2.3
(``drop_index`` of a ``Model.index()``, ``remove_fields`` of a ``backref='+'`` key,
SQLite rebuilds under a trigger naming the table). ``datalayer migrate`` never reads
this file.
"""

IGNORE = ["basemodel"]

try:
    from datalayer.evolve.pw_migrate import route_create_auto
    from datalayer.evolve.steps import install_fixes
except ImportError:  # pw_migrate run without datalayer installed: nothing to fix up
    pass
else:
    install_fixes()
    route_create_auto()
