"""Models of the accounts app, one module per aggregate."""

from accounts.models.app_config import AppConfig
from accounts.models.audit import AuditEvent, AuditRefusalWindow
from accounts.models.token import ApiToken, WsTicket
from accounts.models.user import DefaultApprovalPolicy, User, UserManager

__all__ = [
    "ApiToken",
    "AppConfig",
    "AuditEvent",
    "DefaultApprovalPolicy",
    "AuditRefusalWindow",
    "User",
    "UserManager",
    "WsTicket",
]
