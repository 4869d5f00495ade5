"""The user: email is the login name, unique case-insensitively."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    """Creates users with a normalised (lower-case) email."""

    use_in_migrations = True

    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(email__iexact=username)

    def _create(self, email: str, password: str | None, **extra: Any) -> User:
        if not email:
            raise ValueError("An email is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.full_clean(exclude=["password"])
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **extra)


class DefaultApprovalPolicy(models.TextChoices):
    """What new chats start with (the same values as a chat session's `approval_policy`)."""

    AUTO = "auto", "Run every tool call"
    ASK = "ask", "Ask before exec/write tools and sensitive commands"


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in; `is_staff` marks admins. Groups are Django's auth groups."""

    email = models.EmailField(max_length=254, unique=True)
    display_name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    default_approval_policy = models.CharField(
        max_length=8,
        choices=DefaultApprovalPolicy.choices,
        default=DefaultApprovalPolicy.ASK,
        db_default=DefaultApprovalPolicy.ASK,  # rows written outside the ORM get it too
        help_text="The approval policy new chats of this user start with.",
    )
    oidc_sub = models.CharField(max_length=255, null=True, blank=True, unique=True, default=None)
    date_joined = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        self.email = self.__class__.objects.normalize_email(self.email).lower()

    @property
    def name(self) -> str:
        return self.display_name or self.email
