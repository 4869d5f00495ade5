"""Write services of the accounts app."""

from accounts.services.audit import audit_record, client_ip_of
from accounts.services.users import admin_ensure

__all__ = ["admin_ensure", "audit_record", "client_ip_of"]
