"""The types reach the caller: a user's ``mypy --strict`` accepts the examples of the README
and of the guides (docs/getting-started.md, docs/guides/*.md) and
rejects a typo'd key on a DTO, on a page item and in a write's ``data``.

mypy runs once, in a subprocess, on small user scripts in a temporary directory, against
the installed package (its ``py.typed``), as a user's project would.
"""

from __future__ import annotations

import os
import re
import site
import subprocess
import sys
from pathlib import Path

import datalayer

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
# The pages whose ```python blocks are a user's code (the other pages are other helpers'
# prose about the library's internals, checked by `mkdocs build --strict` only).
EXAMPLE_PAGES = [README, ROOT / "docs" / "getting-started.md",
                 *sorted((ROOT / "docs" / "guides").glob("*.md"))]

# Names the README's snippets leave to the reader (their provider, their request).
PRELUDE = """\
from __future__ import annotations


class TemporaryFailure(Exception):
    pass


def send(delivery: object) -> str:
    return "provider-message-id"


request_id = "request-1"
email = "ada@example.com"

# The people and the tenant the guides' snippets work with.
from datalayer import TenantQueries as _Tenants, UserQueries as _Users  # noqa: E402

ada = _Users.create({"name": "Ada", "email": "ada@example.com"})
grace = _Users.create({"name": "Grace", "email": "grace@example.com"})
team = _Tenants.create_with_owner(ada["id"], {"name": "Analytical Engines"})

"""

BAD_DTO = """\
from datalayer import TodoId, TodoQueries

todo = TodoQueries.find_by_id(TodoId("t1"))
if todo is not None:
    print(todo["titel"])
"""

BAD_PAGE_ITEM = """\
from datalayer import TodoQueries, UserId

page = TodoQueries.list_for_user(UserId("u1"))
for item in page["items"]:
    print(item["titel"])
"""

BAD_INPUT = """\
from datalayer import TodoQueries, UserId

TodoQueries.create(UserId("u1"), {"titel": "Write the first program"})
"""

GOOD_TYPES = """\
from datalayer import Page, TodoDTO, TodoId, TodoQueries, UserId

user_id = UserId("u1")
page: Page[TodoDTO] = TodoQueries.list_for_user(user_id, limit=10)
titles: list[str] = [item["title"] for item in page["items"]]
cursor: str | None = page["next_cursor"]
done: bool = TodoQueries.toggle_complete(TodoId("t1"), user_id)["completed"]
again: TodoId = page["items"][0]["id"]  # an id read from a DTO keeps its type
"""


def readme_examples() -> list[str]:
    """The Python snippets of the README and the guides, in order."""
    blocks = []
    for page in EXAMPLE_PAGES:
        found = re.findall(r"^```python\n(.*?)^```", page.read_text(), re.S | re.M)
        assert found or page != README, "README.md has no ```python examples"
        blocks += found
    return blocks


def mypy_env() -> dict[str, str]:
    """Point mypy at the package when it is not in site-packages (an editable install)."""
    env = dict(os.environ)
    root = Path(datalayer.__file__).resolve().parent.parent
    installed = {Path(p).resolve() for p in [*site.getsitepackages(), site.getusersitepackages()]}
    if root not in installed:
        env["MYPYPATH"] = str(root)
    return env


def run_mypy(tmp_path: Path, scripts: dict[str, str]) -> dict[str, list[str]]:
    """Type-check the scripts with ``mypy --strict``; return each script's error lines."""
    for name, text in scripts.items():
        (tmp_path / name).write_text(text)
    # An empty config: none of this repository's settings, only --strict.
    (tmp_path / "mypy.ini").write_text("[mypy]\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--config-file",
            "mypy.ini",
            # The package's own modules are checked by `mypy datalayer`; here only what
            # a user's script sees of them counts.
            "--follow-imports=silent",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            "--hide-error-context",
            "--no-error-summary",
            *scripts,
        ],
        cwd=tmp_path,
        env=mypy_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode in (0, 1), result.stdout + result.stderr  # 2: mypy itself failed
    errors: dict[str, list[str]] = {name: [] for name in scripts}
    for line in result.stdout.splitlines():
        name = line.split(":", 1)[0]
        if ": error:" in line:
            assert name in errors, line
            errors[name].append(line)
    return errors


def test_user_code_type_checks_and_typos_in_keys_are_caught(tmp_path: Path) -> None:
    scripts = {
        f"readme_example_{n}.py": PRELUDE + block for n, block in enumerate(readme_examples())
    }
    scripts |= {
        "good_types.py": GOOD_TYPES,
        "bad_dto.py": BAD_DTO,
        "bad_page_item.py": BAD_PAGE_ITEM,
        "bad_input.py": BAD_INPUT,
    }
    errors = run_mypy(tmp_path, scripts)
    accepted = [name for name in scripts if not name.startswith("bad_")]
    assert {name: errors[name] for name in accepted if errors[name]} == {}
    # Each bad script fails on its typo (its last line), and only there.
    for name in ("bad_dto.py", "bad_page_item.py", "bad_input.py"):
        typo_line = len(scripts[name].splitlines())
        assert any('"titel"' in e and "TypedDict" in e for e in errors[name]), errors[name]
        assert all(e.startswith(f"{name}:{typo_line}:") for e in errors[name]), errors[name]
    assert any("TodoDTO" in e for e in errors["bad_dto.py"]), errors["bad_dto.py"]
    assert any("CreateTodoInput" in e for e in errors["bad_input.py"]), errors["bad_input.py"]


# --- the mistakes a user's mypy --strict catches (issue 26) --------------------------------
# Each mistake is one line of a script, beside its correction. The script with the mistakes
# must be reported at each mistake's line, and the corrected script must pass.
MISTAKES_PRELUDE = """\
from datalayer import (
    BillingSubscriptionState,
    DeliveryQueries,
    NotificationQueries,
    SubscriptionEventQueries,
    TenantMemberQueries,
    TenantQueries,
    TodoQueries,
    UserId,
)

user_id, other = UserId("u1"), UserId("u2")
todo = TodoQueries.create(user_id, {"title": "Write the first program"})
note = NotificationQueries.notify(user_id, type="direct_message", title="Hi", body="b")
tenant = TenantQueries.create_with_owner(user_id, {"name": "Analytical Engines"})
state: BillingSubscriptionState = {"status": "active", "plan_id": "pro", "polar_subscription_id": "sub_1"}
"""
EVENT = '"event_id": "evt_1", "event_type": "subscription.created", "occurred_at": "2026-01-01T00:00:00+00:00", "subscription": state'
MISTAKES: dict[str, tuple[str, str]] = {
    "ids swapped in TodoQueries.delete": (
        'TodoQueries.delete(user_id, todo["id"])',
        'TodoQueries.delete(todo["id"], user_id)',
    ),
    "ids swapped in NotificationQueries.archive": (
        'NotificationQueries.archive(user_id, note["id"])',
        'NotificationQueries.archive(note["id"], user_id)',
    ),
    "an unknown role": (
        'TenantMemberQueries.change_role(tenant["id"], other, user_id, role="onwer")',
        'TenantMemberQueries.change_role(tenant["id"], other, user_id, role="owner")',
    ),
    "an unknown notification type": (
        'NotificationQueries.notify(other, type="memberjoined", title="t", body="b")',
        'NotificationQueries.notify(other, type="member_joined", title="t", body="b")',
    ),
    "an unknown channel": (
        'DeliveryQueries.claim("worker-1", channels=["sms"])',
        'DeliveryQueries.claim("worker-1", channels=["email"])',
    ),
    "a misspelled stats() key": (
        'print(DeliveryQueries.stats()["oldest_due_age_secs"])',
        'print(DeliveryQueries.stats()["oldest_due_age_seconds"])',
    ),
    "a billing event with a misspelled field": (
        'SubscriptionEventQueries.ingest({"provder": "polar", ' + EVENT + "})",
        'SubscriptionEventQueries.ingest({"provider": "polar", ' + EVENT + "})",
    ),
}


def mistakes_script(*, corrected: bool) -> str:
    """The prelude, then one line per mistake (or its correction)."""
    return MISTAKES_PRELUDE + "".join(pair[corrected] + "\n" for pair in MISTAKES.values())


def test_mypy_reports_each_mistake_and_passes_the_corrections(tmp_path: Path) -> None:
    errors = run_mypy(
        tmp_path,
        {
            "mistakes.py": mistakes_script(corrected=False),
            "corrected.py": mistakes_script(corrected=True),
        },
    )
    assert errors["corrected.py"] == []
    first = len(MISTAKES_PRELUDE.splitlines()) + 1
    lines = {int(e.split(":")[1]) for e in errors["mistakes.py"]}
    for n, mistake in enumerate(MISTAKES):
        assert first + n in lines, (mistake, errors["mistakes.py"])
    assert lines <= set(range(first, first + len(MISTAKES))), errors["mistakes.py"]
