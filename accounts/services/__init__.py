"""Write services of the accounts app (split by subdomain, re-exported here)."""

from accounts.services.audit import audit_record, audit_refusal
from accounts.services.auth import app_config_update, logout, password_login
from accounts.services.groups import (
    group_create,
    group_delete,
    group_member_add,
    group_member_remove,
    group_update,
)
from accounts.services.sessions import user_sessions_end
from accounts.services.tickets import ws_ticket_issue, ws_ticket_redeem
from accounts.services.tokens import (
    token_authenticate,
    token_create,
    token_revoke,
    tokens_revoke_all,
)
from accounts.services.users import (
    admin_ensure,
    user_create,
    user_deactivate,
    user_password_change,
    user_update,
    user_update_self,
)

__all__ = [
    "admin_ensure",
    "app_config_update",
    "audit_record",
    "audit_refusal",
    "group_create",
    "group_delete",
    "group_member_add",
    "group_member_remove",
    "group_update",
    "logout",
    "password_login",
    "token_authenticate",
    "token_create",
    "token_revoke",
    "tokens_revoke_all",
    "user_create",
    "user_deactivate",
    "user_password_change",
    "user_sessions_end",
    "user_update",
    "user_update_self",
    "ws_ticket_issue",
    "ws_ticket_redeem",
]
