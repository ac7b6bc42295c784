"""The audit trail's redaction exception: only for a user who no longer exists.

Migration 004 let an erasure's redaction through the append-only trigger once any
USER_ERASE row named the user, so a USER_ERASE row written by hand for a live user let
anyone null out that user's trail. Now the named user must no longer exist (``erase``
deletes them before writing its row), and besides the rows whose target is that user,
only the rows the USER_ERASE row lists by id (in its metadata: rows whose reason or
metadata mentioned the user) may change, in their reason, user agent, ip and metadata.
Same text as ``datalayer.models.admin.AUDIT_APPEND_ONLY_SQL`` / ``AUDIT_APPEND_ONLY_SQLITE``;
the rollback restores 004's text. Written with ``datalayer makemigrations --empty``.
"""

import peewee as pw
from peewee_migrate import Migrator

FUNCTION = 'CREATE OR REPLACE FUNCTION admin_audit_log_append_only() RETURNS trigger\n    LANGUAGE plpgsql AS $$\n    BEGIN\n        IF TG_OP = \'UPDATE\' THEN\n            IF (COALESCE(OLD.action <> \'USER_ERASE\'\n        AND NEW.id = OLD.id\n        AND NEW.admin_user_id = OLD.admin_user_id AND NEW.action = OLD.action\n        AND NEW.target_type = OLD.target_type AND NEW.created_at = OLD.created_at\n        AND COALESCE(NEW.impersonation_session_id = OLD.impersonation_session_id,\n                     NEW.impersonation_session_id IS NULL AND OLD.impersonation_session_id IS NULL)\n        AND (NEW.target_id IS NULL OR NEW.target_id = OLD.target_id)\n        AND EXISTS (SELECT 1 FROM admin_audit_log AS erasure\n                    WHERE erasure.action = \'USER_ERASE\' AND erasure.target_type = \'user\'\n                      AND NOT EXISTS (SELECT 1 FROM "user" WHERE "user".id = erasure.target_id)\n                      AND ((OLD.target_type = \'user\' AND erasure.target_id = OLD.target_id)\n                           OR CAST(erasure.metadata AS TEXT) LIKE \'%%"\' || OLD.id || \'"%%\')),\n        FALSE)) THEN\n                RETURN NEW;\n            END IF;\n        END IF;\n        RAISE EXCEPTION \'admin_audit_log is append-only: %% is not allowed\', TG_OP\n            USING ERRCODE = \'insufficient_privilege\';\n    END;\n    $$'
SQLITE_NO_UPDATE = 'CREATE TRIGGER admin_audit_log_no_update BEFORE UPDATE ON admin_audit_log\n    WHEN NOT (COALESCE(OLD.action <> \'USER_ERASE\'\n        AND NEW.id = OLD.id\n        AND NEW.admin_user_id = OLD.admin_user_id AND NEW.action = OLD.action\n        AND NEW.target_type = OLD.target_type AND NEW.created_at = OLD.created_at\n        AND COALESCE(NEW.impersonation_session_id = OLD.impersonation_session_id,\n                     NEW.impersonation_session_id IS NULL AND OLD.impersonation_session_id IS NULL)\n        AND (NEW.target_id IS NULL OR NEW.target_id = OLD.target_id)\n        AND EXISTS (SELECT 1 FROM admin_audit_log AS erasure\n                    WHERE erasure.action = \'USER_ERASE\' AND erasure.target_type = \'user\'\n                      AND NOT EXISTS (SELECT 1 FROM "user" WHERE "user".id = erasure.target_id)\n                      AND ((OLD.target_type = \'user\' AND erasure.target_id = OLD.target_id)\n                           OR CAST(erasure.metadata AS TEXT) LIKE \'%%"\' || OLD.id || \'"%%\')),\n        FALSE))\n    BEGIN SELECT RAISE(ABORT, \'admin_audit_log is append-only: UPDATE is not allowed\'); END'
OLD_FUNCTION = "CREATE OR REPLACE FUNCTION admin_audit_log_append_only() RETURNS trigger\n    LANGUAGE plpgsql AS $$\n    BEGIN\n        IF TG_OP = 'UPDATE' THEN\n            IF (COALESCE(OLD.target_type = 'user' AND OLD.action <> 'USER_ERASE'\n        AND NEW.target_id IS NULL AND NEW.id = OLD.id\n        AND NEW.admin_user_id = OLD.admin_user_id AND NEW.action = OLD.action\n        AND NEW.target_type = OLD.target_type AND NEW.created_at = OLD.created_at\n        AND COALESCE(NEW.impersonation_session_id = OLD.impersonation_session_id,\n                     NEW.impersonation_session_id IS NULL AND OLD.impersonation_session_id IS NULL)\n        AND EXISTS (SELECT 1 FROM admin_audit_log AS erasure\n                    WHERE erasure.action = 'USER_ERASE' AND erasure.target_type = 'user'\n                      AND erasure.target_id = OLD.target_id), FALSE)) THEN\n                RETURN NEW;\n            END IF;\n        END IF;\n        RAISE EXCEPTION 'admin_audit_log is append-only: %% is not allowed', TG_OP\n            USING ERRCODE = 'insufficient_privilege';\n    END;\n    $$"
OLD_SQLITE_NO_UPDATE = "CREATE TRIGGER admin_audit_log_no_update BEFORE UPDATE ON admin_audit_log\n    WHEN NOT (COALESCE(OLD.target_type = 'user' AND OLD.action <> 'USER_ERASE'\n        AND NEW.target_id IS NULL AND NEW.id = OLD.id\n        AND NEW.admin_user_id = OLD.admin_user_id AND NEW.action = OLD.action\n        AND NEW.target_type = OLD.target_type AND NEW.created_at = OLD.created_at\n        AND COALESCE(NEW.impersonation_session_id = OLD.impersonation_session_id,\n                     NEW.impersonation_session_id IS NULL AND OLD.impersonation_session_id IS NULL)\n        AND EXISTS (SELECT 1 FROM admin_audit_log AS erasure\n                    WHERE erasure.action = 'USER_ERASE' AND erasure.target_type = 'user'\n                      AND erasure.target_id = OLD.target_id), FALSE))\n    BEGIN SELECT RAISE(ABORT, 'admin_audit_log is append-only: UPDATE is not allowed'); END"


def _install(migrator: Migrator, database: pw.Database, function: str, no_update: str) -> None:
    if isinstance(database, pw.SqliteDatabase):
        migrator.sql("DROP TRIGGER IF EXISTS admin_audit_log_no_update")
        migrator.sql(no_update)
    else:
        migrator.sql(function)


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    """Apply audit_redaction_erased_only."""
    _install(migrator, database, FUNCTION, SQLITE_NO_UPDATE)


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    """Undo audit_redaction_erased_only."""
    _install(migrator, database, OLD_FUNCTION, OLD_SQLITE_NO_UPDATE)
