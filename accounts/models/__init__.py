"""Models of the accounts app, one module per aggregate."""

from accounts.models.audit import AuditEvent
from accounts.models.user import User, UserManager

__all__ = ["AuditEvent", "User", "UserManager"]
