"""DTOs of the auth domain: users, sessions, accounts, verifications, signing keys.

Secrets are ``load_only``: a write may take them, a dump never shows them
(``session.token``, ``verification.value``, ``account.password`` and its OAuth
tokens, ``jwks.private_key``).
"""

from __future__ import annotations

import datetime as dt
from typing import Required, TypedDict

from marshmallow import validate

from datalayer.models import Account, Jwks, Session, User, Verification
from datalayer.schemas.base import (
    Dumper,
    Email,
    Text,
    Url,
    model_schema,
    writable_schema,
)
from datalayer.types import (
    AccountId,
    AnalyticsConsent,
    JwksId,
    LifecycleStage,
    SessionId,
    TenantId,
    UserAdminRole,
    UserId,
    VerificationId,
)

SECRET_MAX = 8192  # tokens, hashes and PEM/JWK keys: generous, but bounded

UserSchema = model_schema(
    User,
    name="UserSchema",
    # Set only through their own queries: set_active_tenant, touch_last_active, set_admin_role.
    dump_only=("active_tenant_id", "first_seen_at", "last_active_at", "admin_role"),
    overrides={
        "name": Text(required=True, validate=validate.Length(min=1, max=255)),
        "email": Email(required=True),
        "image": Url(allow_none=True, validate=validate.Length(max=2048)),
        "preferred_language": Text(allow_none=True, validate=validate.Length(min=2, max=35)),
    },
)
# Create and update take every column but the server-owned ones (UserSchema's dump_only);
# the analytics fields are filled in later, by an update.
CreateUserSchema = writable_schema(
    UserSchema,
    name="CreateUserSchema",
    exclude=("lifecycle_stage", "churn_risk_score", "is_power_user"),
    required=("name", "email"),
)
UpdateUserSchema = writable_schema(UserSchema, name="UpdateUserSchema")

SessionSchema = model_schema(
    Session,
    name="SessionSchema",
    load_only=("token",),
    dump_only=("user_id",),
    overrides={
        "token": Text(
            required=True, load_only=True, validate=validate.Length(min=1, max=SECRET_MAX)
        ),
        "ip_address": Text(allow_none=True, validate=validate.Length(max=64)),
        "user_agent": Text(allow_none=True, validate=validate.Length(max=2048)),
    },
)
CreateSessionSchema = writable_schema(
    SessionSchema,
    name="CreateSessionSchema",
    required=("token", "expires_at"),
)

_ACCOUNT_SECRETS = ("password", "access_token", "refresh_token", "id_token")
AccountSchema = model_schema(
    Account,
    name="AccountSchema",
    load_only=_ACCOUNT_SECRETS,
    dump_only=("user_id",),
    overrides={
        "account_id": Text(required=True, validate=validate.Length(min=1, max=255)),
        "provider_id": Text(required=True, validate=validate.Length(min=1, max=255)),
        **{
            name: Text(allow_none=True, load_only=True, validate=validate.Length(max=SECRET_MAX))
            for name in _ACCOUNT_SECRETS
        },
    },
)
CreateAccountSchema = writable_schema(
    AccountSchema,
    name="CreateAccountSchema",
    required=("account_id", "provider_id"),
)

VerificationSchema = model_schema(
    Verification,
    name="VerificationSchema",
    load_only=("value",),
    overrides={
        "identifier": Text(required=True, validate=validate.Length(min=1, max=255)),
        "value": Text(
            required=True, load_only=True, validate=validate.Length(min=1, max=SECRET_MAX)
        ),
    },
)
CreateVerificationSchema = writable_schema(
    VerificationSchema,
    name="CreateVerificationSchema",
    required=("identifier", "value", "expires_at"),
)

JwksSchema = model_schema(
    Jwks,
    name="JwksSchema",
    load_only=("private_key",),
    overrides={
        "public_key": Text(required=True, validate=validate.Length(min=1, max=SECRET_MAX)),
        "private_key": Text(
            required=True, load_only=True, validate=validate.Length(min=1, max=SECRET_MAX)
        ),
    },
)
CreateJwksSchema = writable_schema(
    JwksSchema,
    name="CreateJwksSchema",
    required=("public_key", "private_key"),
)


# Write inputs: what ``data`` may hold (``total=False``: every key may be left out but the
# ``Required`` ones). Static types only — at run time any mapping is accepted and checked
# by the schema, which refuses unknown keys. tests/test_schemas_common.py keeps each one
# equal to its schema's fields. The call syntax, because ``Required`` inside a string
# annotation (``from __future__ import annotations``) is lost at run time on 3.11.


CreateUserInput = TypedDict(
    "CreateUserInput",
    {
        "name": Required[str],
        "email": Required[str],
        "email_verified": bool,
        "image": str | None,
        "analytics_consent": AnalyticsConsent,
        "preferred_language": str | None,
    },
    total=False,
)


UpdateUserInput = TypedDict(
    "UpdateUserInput",
    {
        "name": str,
        "email": str,
        "email_verified": bool,
        "image": str | None,
        "analytics_consent": AnalyticsConsent,
        "preferred_language": str | None,
        "lifecycle_stage": LifecycleStage,
        "churn_risk_score": int | None,
        "is_power_user": bool | None,
    },
    total=False,
)


CreateAccountInput = TypedDict(
    "CreateAccountInput",
    {
        "account_id": Required[str],
        "provider_id": Required[str],
        "password": str | None,
        "access_token": str | None,
        "refresh_token": str | None,
        "id_token": str | None,
        "access_token_expires_at": dt.datetime | str | None,
        "refresh_token_expires_at": dt.datetime | str | None,
        "scope": str | None,
    },
    total=False,
)


class UserDTO(TypedDict):
    id: UserId
    name: str
    email: str
    email_verified: bool
    image: str | None
    created_at: str
    updated_at: str
    analytics_consent: AnalyticsConsent
    first_seen_at: str | None
    last_active_at: str | None
    lifecycle_stage: LifecycleStage
    churn_risk_score: int | None
    is_power_user: bool | None
    admin_role: UserAdminRole | None
    preferred_language: str | None
    active_tenant_id: TenantId | None


class SessionDTO(TypedDict):
    id: SessionId
    expires_at: str
    created_at: str
    updated_at: str
    ip_address: str | None
    user_agent: str | None
    user_id: UserId


class AccountDTO(TypedDict):
    id: AccountId
    account_id: str
    provider_id: str
    user_id: UserId
    access_token_expires_at: str | None
    refresh_token_expires_at: str | None
    scope: str | None
    created_at: str
    updated_at: str


class VerificationDTO(TypedDict):
    id: VerificationId
    identifier: str
    expires_at: str
    created_at: str
    updated_at: str


class JwksDTO(TypedDict):
    id: JwksId
    public_key: str
    created_at: str
    expires_at: str | None


# Built once, at import: the instances the query modules use.
user_schema = UserSchema()
create_user_schema = CreateUserSchema()
update_user_schema = UpdateUserSchema()
session_schema = SessionSchema()
create_session_schema = CreateSessionSchema()
account_schema = AccountSchema()
create_account_schema = CreateAccountSchema()
verification_schema = VerificationSchema()
create_verification_schema = CreateVerificationSchema()
jwks_schema = JwksSchema()
create_jwks_schema = CreateJwksSchema()

user_dumper: Dumper[UserDTO] = Dumper(user_schema, User)
session_dumper: Dumper[SessionDTO] = Dumper(session_schema, Session)
account_dumper: Dumper[AccountDTO] = Dumper(account_schema, Account)
verification_dumper: Dumper[VerificationDTO] = Dumper(verification_schema, Verification)
jwks_dumper: Dumper[JwksDTO] = Dumper(jwks_schema, Jwks)


class ReviewItem(TypedDict):
    """A free-text value written by someone else that mentions the erased user."""

    table: str
    row_id: str
    column: str


class ErasureResult(TypedDict):
    """What ``UserQueries.erase`` did: rows deleted or anonymized per table, and the free
    text others wrote that still mentions the user, for a person to review."""

    counts: dict[str, int]
    review: list[ReviewItem]


__all__ = [
    "ErasureResult",
    "ReviewItem",
    "AccountDTO",
    "CreateAccountInput",
    "CreateUserInput",
    "UpdateUserInput",
    "AccountSchema",
    "CreateAccountSchema",
    "CreateJwksSchema",
    "CreateSessionSchema",
    "CreateUserSchema",
    "CreateVerificationSchema",
    "JwksDTO",
    "JwksSchema",
    "SessionDTO",
    "SessionSchema",
    "UpdateUserSchema",
    "UserDTO",
    "UserSchema",
    "VerificationDTO",
    "VerificationSchema",
]
