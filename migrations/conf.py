"""pw_migrate configuration, read when it runs with ``--directory migrations``.

``datalayer.models.BaseModel`` is an abstract base, not a table: without this,
``pw_migrate create --auto --auto-source datalayer.models`` offers to create
``base_model``. (``datalayer migrate`` never reads this file.)
"""

IGNORE = ["basemodel"]
