"""Sign a user up, create their tenant, invite a teammate and add a todo — from a script.

    python examples/signup_and_tenant.py --database sqlite:///example.sqlite3

The database must be migrated (``datalayer migrate --database URL``). Prints the DTOs
it gets back as JSON.
"""

from __future__ import annotations

import argparse
import json
import uuid

from datalayer import (
    ConflictError,
    TenantInviteQueries,
    TenantQueries,
    TodoQueries,
    UserQueries,
    atomic,
    init_db,
)


def signup_with_tenant(name: str, email: str, tenant_name: str) -> dict:
    """Create the user and their tenant in one transaction; return both DTOs."""
    with atomic():  # both or neither
        user = UserQueries.create({"name": name, "email": email})
        tenant = TenantQueries.create_with_owner(user["id"], {"name": tenant_name})
    return {"user": user, "tenant": tenant}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", help="database URL (default: $DATABASE_URL)")
    parser.add_argument("--email", default=f"founder-{uuid.uuid4().hex[:6]}@example.com")
    args = parser.parse_args(argv)
    init_db(args.database)
    result = signup_with_tenant("Founder", args.email, "Founders Inc")
    user, tenant = result["user"], result["tenant"]
    try:
        signup_with_tenant("Impostor", args.email, "Copycat Ltd")
    except ConflictError as exc:
        result["duplicate_signup"] = str(exc)
    invite, token = TenantInviteQueries.create(tenant["id"], user["id"],
                                               email=f"teammate-{uuid.uuid4().hex[:6]}@example.com")
    result["invite"] = invite
    result["todo"] = TodoQueries.create(user["id"], {"title": "Welcome the teammate"},
                                        tenant_id=tenant["id"])
    result["tenants_of_user"] = TenantQueries.list_for_user(user["id"])
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
