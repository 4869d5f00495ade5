"""Read-side queries of the accounts app."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.db.models import Q, QuerySet

from accounts.models import ApiToken, AppConfig, AuditEvent, User
from cortex.errors import NotAuthenticated, NotFound

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser


def user_is_admin(user: Any) -> bool:
    """The one rule of "is an admin": signed in, active and `is_staff` (`is_superuser` follows
    `is_staff` and grants nothing of its own). `admin_q` is the same rule for querysets."""
    return bool(
        user is not None
        and getattr(user, "is_authenticated", False)
        and getattr(user, "is_active", False)
        and getattr(user, "is_staff", False)
    )


def admin_q(prefix: str = "") -> Q:
    """`user_is_admin` as a filter on users (`prefix` reaches them through a relation, e.g.
    "user__")."""
    return Q(**{f"{prefix}is_active": True, f"{prefix}is_staff": True})


def admin_user_ids() -> set[int]:
    """Ids of every admin (`user_is_admin` in one query)."""
    return set(User.objects.filter(admin_q()).values_list("id", flat=True))


def audit_list(*, user: User) -> QuerySet[AuditEvent]:
    """Audit events visible to `user`: admins see all, others none."""
    if not user_is_admin(user):
        return AuditEvent.objects.none()
    return AuditEvent.objects.select_related("actor").all()


def audit_about_node(*, queryset: QuerySet[AuditEvent], node_id: str) -> QuerySet[AuditEvent]:
    """Narrow an audit queryset to events about one node (its id as the target)."""
    return queryset.filter(target_type="node", target_id=node_id)


def user_me(*, user: User) -> QuerySet[User]:
    """Just the caller, with groups prefetched."""
    if not user.is_authenticated:
        return User.objects.none()
    return User.objects.filter(pk=user.pk).prefetch_related("groups")


def user_list(*, user: User) -> QuerySet[User]:
    """Every user for admins; nobody for others."""
    if not user_is_admin(user):
        return User.objects.none()
    return User.objects.prefetch_related("groups").order_by("id")


def user_get(*, user: User, user_id: int | str) -> User:
    """One user visible to `user` (admins only); NotFound otherwise."""
    try:
        return user_list(user=user).get(pk=int(user_id))
    except (User.DoesNotExist, ValueError, TypeError) as exc:
        raise NotFound("No such user.") from exc


def group_list(*, user: User) -> QuerySet[Group]:
    """Every group with its member count, for admins; nothing for others."""
    if not user_is_admin(user):
        return Group.objects.none()
    return Group.objects.prefetch_related("user_set").order_by("name")


def token_list_for_user(*, user: User) -> QuerySet[ApiToken]:
    """The caller's own API tokens (revoked ones included, so the history is visible)."""
    if not user.is_authenticated:
        return ApiToken.objects.none()
    return ApiToken.objects.filter(user=user)


def app_config_get() -> AppConfig:
    """The run-time configuration; defaults when no admin has changed it yet (never writes)."""
    return AppConfig.objects.filter(pk=AppConfig.SINGLETON_PK).first() or AppConfig(
        pk=AppConfig.SINGLETON_PK
    )


def password_login_allowed() -> bool:
    """Both the environment (CORTEX_ALLOW_PASSWORD_LOGIN) and the run-time switch allow it."""
    return bool(settings.ALLOW_PASSWORD_LOGIN) and app_config_get().allow_password_login


def user_find_active_by_email(*, email: str) -> User | None:
    """The active user with this email (any case), for operator commands."""
    return User.objects.filter(email__iexact=email, is_active=True).first()


def group_get(*, user: User, group_id: int | str) -> Group:
    """One group visible to `user` (admins only), members prefetched; NotFound otherwise."""
    try:
        return group_list(user=user).get(pk=int(group_id))
    except (Group.DoesNotExist, ValueError, TypeError) as exc:
        raise NotFound("No such group.") from exc


def group_find(*, ref: str) -> Group | None:
    """A group by name, or by numeric id when no group has that name (operators' commands)."""
    group = Group.objects.filter(name=ref).first()
    if group is None and ref.isdigit():
        group = Group.objects.filter(pk=int(ref)).first()
    return group


def user_signed_in(*, user: User | AnonymousUser) -> User:
    """`request.user` as the account a transport acts for; anyone else is NotAuthenticated.

    Transports call it past their login check (DRF's IsAuthenticated, the admin's staff check),
    so it refuses nothing there; it narrows `User | AnonymousUser` to the `User` that services
    take, and fails closed should a route ever lose its check.
    """
    if isinstance(user, User) and user.is_authenticated:
        return user
    raise NotAuthenticated("Sign in first.")
