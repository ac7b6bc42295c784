"""The package ships whole: the built sdist and wheel hold what an install needs, and the
installed metadata says what it is (``datalayer --version``, ``Requires-Python``).

The build runs ``python -m build`` (sdist, then the wheel built from that sdist, so a
file missing from the sdist is missing from the wheel too) on a copy of the source tree.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from importlib import metadata
from pathlib import Path

import pytest
from click.testing import CliRunner

from datalayer.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
DOMAINS = {
    "auth": ("users", "sessions", "accounts", "verifications", "jwks"),
    "tenant": ("tenants", "members", "invites", "activity"),
    "notifications": ("notifications", "deliveries", "preferences", "targets"),
    "subscriptions": ("events", "subscriptions"),
    "features": ("todos", "waitlist", "activity"),
    "admin": ("users", "roles", "audit_log"),
}
SKIP = shutil.ignore_patterns(
    ".git", ".venv", ".tox", "build", "dist", "*.egg-info", "__pycache__", "*.pyc",
    ".mypy_cache", ".ruff_cache", ".pytest_cache", ".import_linter_cache", "*.sqlite3*",
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Build the sdist and the wheel of a copy of the source tree; return their paths."""
    if not (ROOT / "setup.cfg").exists():
        pytest.skip("not a source checkout")
    source = tmp_path_factory.mktemp("source") / "datalayer"
    shutil.copytree(ROOT, source, ignore=SKIP)
    out = source / "dist"
    result = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (sdist,) = out.glob("tenantlayer-*.tar.gz")  # the distribution's own name
    (wheel,) = out.glob("tenantlayer-*.whl")
    return sdist, wheel


def test_the_wheel_holds_every_module_migration_marker_and_the_license(
    built: tuple[Path, Path],
) -> None:
    names = set(zipfile.ZipFile(built[1]).namelist())
    for domain, modules in DOMAINS.items():
        for module in ("__init__", *modules):
            assert f"datalayer/queries/{domain}/{module}.py" in names, (domain, module)
    migrations = sorted(p.name for p in (ROOT / "migrations").glob("*.py"))
    assert "001_initial.py" in migrations
    for name in migrations:
        assert f"datalayer/migrations/{name}" in names, name
    assert "datalayer/py.typed" in names
    assert "datalayer/connection/context.py" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE")
               for n in names), sorted(n for n in names if "dist-info" in n)
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)


def test_the_wheel_metadata_and_entry_point(built: tuple[Path, Path]) -> None:
    wheel = zipfile.ZipFile(built[1])
    (meta_name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    meta = Parser().parsestr(wheel.read(meta_name).decode())
    assert meta["Name"] == "tenantlayer"  # `datalayer` on PyPI is someone else's
    assert meta["Requires-Python"] == ">=3.11"  # no upper cap
    urls = dict(value.split(", ", 1) for value in meta.get_all("Project-URL") or [])
    assert {"Documentation", "Source", "Changelog", "Issues"} <= set(urls), urls
    assert "Typing :: Typed" in meta.get_all("Classifier")
    assert "MIT" in (meta.get("License") or "") + (meta.get("License-Expression") or "")
    (entry_name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    assert "datalayer = datalayer.cli:main" in wheel.read(entry_name).decode()


def test_the_sdist_holds_the_license_and_no_tests(built: tuple[Path, Path]) -> None:
    with tarfile.open(built[0]) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"LICENSE", "README.md", "setup.cfg", "pyproject.toml", "PKG-INFO"} <= names
    assert "datalayer/py.typed" in names and "migrations/001_initial.py" in names
    # The tests run from a checkout (they need their helpers and a PostgreSQL server):
    # none is shipped, rather than some without their conftest.
    assert not [n for n in names if n.startswith("tests/")]


def test_version_comes_from_the_installed_metadata() -> None:
    result = CliRunner().invoke(main, ["--version"], prog_name="datalayer")
    assert result.exit_code == 0, result.output
    assert result.output == f"datalayer {metadata.version('tenantlayer')}\n"


def test_readme_has_no_links_outside_the_package() -> None:
    # The README is the package index's project page: nothing there may point into the
    # author's workspace.
    assert "../shared" not in (ROOT / "README.md").read_text()
