"""The audit trail lets one UPDATE through: the redaction of an erased user's rows.

``UserQueries.erase`` writes its USER_ERASE row, then sets target_id (and the reason,
ip, user agent and metadata) of the older rows about that user to nothing; the
append-only trigger now allows exactly that, and nothing else (same text as
``datalayer.models.admin.AUDIT_APPEND_ONLY_SQL`` / ``AUDIT_APPEND_ONLY_SQLITE``).
"""

import peewee as pw

FUNCTION = "CREATE OR REPLACE FUNCTION admin_audit_log_append_only() RETURNS trigger\n    LANGUAGE plpgsql AS $$\n    BEGIN\n        IF TG_OP = 'UPDATE' THEN\n            IF (COALESCE(OLD.target_type = 'user' AND OLD.action <> 'USER_ERASE'\n        AND NEW.target_id IS NULL AND NEW.id = OLD.id\n        AND NEW.admin_user_id = OLD.admin_user_id AND NEW.action = OLD.action\n        AND NEW.target_type = OLD.target_type AND NEW.created_at = OLD.created_at\n        AND COALESCE(NEW.impersonation_session_id = OLD.impersonation_session_id,\n                     NEW.impersonation_session_id IS NULL AND OLD.impersonation_session_id IS NULL)\n        AND EXISTS (SELECT 1 FROM admin_audit_log AS erasure\n                    WHERE erasure.action = 'USER_ERASE' AND erasure.target_type = 'user'\n                      AND erasure.target_id = OLD.target_id), FALSE)) THEN\n                RETURN NEW;\n            END IF;\n        END IF;\n        RAISE EXCEPTION 'admin_audit_log is append-only: %% is not allowed', TG_OP\n            USING ERRCODE = 'insufficient_privilege';\n    END;\n    $$"
SQLITE_NO_UPDATE = "CREATE TRIGGER admin_audit_log_no_update BEFORE UPDATE ON admin_audit_log\n    WHEN NOT (COALESCE(OLD.target_type = 'user' AND OLD.action <> 'USER_ERASE'\n        AND NEW.target_id IS NULL AND NEW.id = OLD.id\n        AND NEW.admin_user_id = OLD.admin_user_id AND NEW.action = OLD.action\n        AND NEW.target_type = OLD.target_type AND NEW.created_at = OLD.created_at\n        AND COALESCE(NEW.impersonation_session_id = OLD.impersonation_session_id,\n                     NEW.impersonation_session_id IS NULL AND OLD.impersonation_session_id IS NULL)\n        AND EXISTS (SELECT 1 FROM admin_audit_log AS erasure\n                    WHERE erasure.action = 'USER_ERASE' AND erasure.target_type = 'user'\n                      AND erasure.target_id = OLD.target_id), FALSE))\n    BEGIN SELECT RAISE(ABORT, 'admin_audit_log is append-only: UPDATE is not allowed'); END"
OLD_FUNCTION = "CREATE OR REPLACE FUNCTION admin_audit_log_append_only() RETURNS trigger\n    LANGUAGE plpgsql AS $$\n    BEGIN\n        RAISE EXCEPTION 'admin_audit_log is append-only: %% is not allowed', TG_OP\n            USING ERRCODE = 'insufficient_privilege';\n    END;\n    $$"
OLD_SQLITE_NO_UPDATE = "CREATE TRIGGER admin_audit_log_no_update BEFORE UPDATE ON admin_audit_log\n    BEGIN SELECT RAISE(ABORT, 'admin_audit_log is append-only: UPDATE is not allowed'); END"


def _install(migrator, database, function, no_update):
    if isinstance(database, pw.SqliteDatabase):
        migrator.sql("DROP TRIGGER IF EXISTS admin_audit_log_no_update")
        migrator.sql(no_update)
    else:
        migrator.sql(function)


def migrate(migrator, database, *, fake=False):
    """Allow the erasure's redaction through the append-only trigger."""
    _install(migrator, database, FUNCTION, SQLITE_NO_UPDATE)


def rollback(migrator, database, *, fake=False):
    """Back to a trail that refuses every UPDATE."""
    _install(migrator, database, OLD_FUNCTION, OLD_SQLITE_NO_UPDATE)
