"""Writing one audit row: every audited admin query calls ``audit`` in its own transaction."""

from __future__ import annotations

from typing import Any

from datalayer.models import AdminAuditLog
from datalayer.schemas.admin import (
    AdminAuditLogDTO,
    admin_audit_log_dumper,
    append_admin_audit_log_schema,
)
from datalayer.schemas.base import load


def audit(
    admin_user_id: str,
    action: str,
    target_type: str,
    target_id: str | None = None,
    **details: Any,
) -> AdminAuditLogDTO:
    """Insert one audit row in the current transaction and return it (callers hold write())."""
    values = load(
        append_admin_audit_log_schema,
        {
            "admin_user_id": admin_user_id,
            "action": action,
            "target_type": target_type,
            "target_id": target_id,
            **details,
        },
    )
    query = AdminAuditLog.insert(**values).returning(*admin_audit_log_dumper.fields)
    return admin_audit_log_dumper.written_one(query)
