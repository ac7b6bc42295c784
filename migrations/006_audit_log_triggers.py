"""The audit log's append-only triggers become part of the migration state.

Migrations 001, 004 and 005 created them with plain SQL, which the migration state does not
record; ``AdminAuditLog.Meta.triggers`` now declares them, so ``makemigrations`` and
``datalayer check`` track them. Applying this drops the triggers and creates them again
from the same text (recording them); rolling it back leaves them in place, as 005 did,
unrecorded. Drafted by ``datalayer makemigrations audit_log_triggers``, then the rollback
written by hand.
"""

import peewee as pw
from peewee_migrate import Migrator

from datalayer.migration_ops import Trigger, add_trigger, drop_trigger

AUDIT_APPEND_ONLY = Trigger('admin_audit_log_append_only', postgres=('CREATE OR REPLACE FUNCTION admin_audit_log_append_only() RETURNS trigger\n    LANGUAGE plpgsql AS $$\n    BEGIN\n        IF TG_OP = \'UPDATE\' THEN\n            IF (COALESCE(OLD.action <> \'USER_ERASE\'\n        AND NEW.id = OLD.id\n        AND NEW.admin_user_id = OLD.admin_user_id AND NEW.action = OLD.action\n        AND NEW.target_type = OLD.target_type AND NEW.created_at = OLD.created_at\n        AND COALESCE(NEW.impersonation_session_id = OLD.impersonation_session_id,\n                     NEW.impersonation_session_id IS NULL AND OLD.impersonation_session_id IS NULL)\n        AND (NEW.target_id IS NULL OR NEW.target_id = OLD.target_id)\n        AND EXISTS (SELECT 1 FROM admin_audit_log AS erasure\n                    WHERE erasure.action = \'USER_ERASE\' AND erasure.target_type = \'user\'\n                      AND NOT EXISTS (SELECT 1 FROM "user" WHERE "user".id = erasure.target_id)\n                      AND ((OLD.target_type = \'user\' AND erasure.target_id = OLD.target_id)\n                           OR CAST(erasure.metadata AS TEXT) LIKE \'%%"\' || OLD.id || \'"%%\')),\n        FALSE)) THEN\n                RETURN NEW;\n            END IF;\n        END IF;\n        RAISE EXCEPTION \'admin_audit_log is append-only: %% is not allowed\', TG_OP\n            USING ERRCODE = \'insufficient_privilege\';\n    END;\n    $$', 'CREATE TRIGGER admin_audit_log_append_only\n    BEFORE UPDATE OR DELETE ON admin_audit_log\n    FOR EACH ROW EXECUTE FUNCTION admin_audit_log_append_only()', 'CREATE TRIGGER admin_audit_log_no_truncate\n    BEFORE TRUNCATE ON admin_audit_log\n    FOR EACH STATEMENT EXECUTE FUNCTION admin_audit_log_append_only()'), sqlite=('CREATE TRIGGER admin_audit_log_no_update BEFORE UPDATE ON admin_audit_log\n    WHEN NOT (COALESCE(OLD.action <> \'USER_ERASE\'\n        AND NEW.id = OLD.id\n        AND NEW.admin_user_id = OLD.admin_user_id AND NEW.action = OLD.action\n        AND NEW.target_type = OLD.target_type AND NEW.created_at = OLD.created_at\n        AND COALESCE(NEW.impersonation_session_id = OLD.impersonation_session_id,\n                     NEW.impersonation_session_id IS NULL AND OLD.impersonation_session_id IS NULL)\n        AND (NEW.target_id IS NULL OR NEW.target_id = OLD.target_id)\n        AND EXISTS (SELECT 1 FROM admin_audit_log AS erasure\n                    WHERE erasure.action = \'USER_ERASE\' AND erasure.target_type = \'user\'\n                      AND NOT EXISTS (SELECT 1 FROM "user" WHERE "user".id = erasure.target_id)\n                      AND ((OLD.target_type = \'user\' AND erasure.target_id = OLD.target_id)\n                           OR CAST(erasure.metadata AS TEXT) LIKE \'%%"\' || OLD.id || \'"%%\')),\n        FALSE))\n    BEGIN SELECT RAISE(ABORT, \'admin_audit_log is append-only: UPDATE is not allowed\'); END', "CREATE TRIGGER admin_audit_log_no_delete BEFORE DELETE ON admin_audit_log\n    BEGIN SELECT RAISE(ABORT, 'admin_audit_log is append-only: DELETE is not allowed'); END"), drop_postgres=('DROP TRIGGER IF EXISTS admin_audit_log_append_only ON admin_audit_log', 'DROP TRIGGER IF EXISTS admin_audit_log_no_truncate ON admin_audit_log', 'DROP FUNCTION IF EXISTS admin_audit_log_append_only()'), drop_sqlite=('DROP TRIGGER IF EXISTS admin_audit_log_no_update', 'DROP TRIGGER IF EXISTS admin_audit_log_no_delete'))


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    """Record the audit log's triggers (dropped and created again, same text)."""
    drop_trigger(migrator, "admin_audit_log", AUDIT_APPEND_ONLY)
    add_trigger(migrator, "admin_audit_log", AUDIT_APPEND_ONLY)


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    """Forget the triggers in the migration state; the database keeps them, as after 005."""
    drop_trigger(migrator, "admin_audit_log", AUDIT_APPEND_ONLY)
    sqlite = isinstance(database, pw.SqliteDatabase)
    for statement in AUDIT_APPEND_ONLY.sqlite if sqlite else AUDIT_APPEND_ONLY.postgres:
        migrator.sql(statement)
