"""The layout shows the architecture (docs/architecture.md): a few modules at the top of the
package, everything else in the folder of its layer."""

from __future__ import annotations

from pathlib import Path

import datalayer

TOP = Path(datalayer.__file__).parent

# The top level keeps the public face and what every layer shares; the rest lives in
# connection/, models/, schemas/, queries/, evolve/, adopt/, cli/ and migration_ops/.
TOP_LEVEL = {
    "__init__.py", "arguments.py", "errors.py", "maintain.py", "redact.py", "seed.py",
    "testing.py", "types.py",
}


def test_the_top_level_holds_at_most_eight_modules() -> None:
    modules = {path.name for path in TOP.glob("*.py")}
    assert modules == TOP_LEVEL
    assert len(modules) <= 8


def test_every_folder_of_the_package_is_a_package() -> None:
    folders = [p for p in TOP.iterdir() if p.is_dir() and p.name != "__pycache__"]
    assert folders and all((p / "__init__.py").is_file() for p in folders)
