"""One layer of provider settings: system, a group or a user, for one kind."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q


class Kind(models.TextChoices):
    LLM = "llm", "Language model"
    TTS = "tts", "Speech synthesis"
    STT = "stt", "Transcription"


class Scope(models.TextChoices):
    SYSTEM = "system", "System"
    GROUP = "group", "Group"
    USER = "user", "User"


class PreferenceLayer(models.Model):
    """Settings of one scope for one kind; secrets hold ciphertext only, one per field."""

    scope = models.CharField(max_length=8, choices=Scope.choices)
    group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.CASCADE, related_name="preference_layers"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="preference_layers",
    )
    kind = models.CharField(max_length=8, choices=Kind.choices)
    #: Backend id; blank means "inherit the provider from a higher layer".
    provider = models.CharField(max_length=64, blank=True, default="")
    #: Non-secret parameter values, {name: value}.
    values = models.JSONField(default=dict, blank=True)
    #: Secret parameter values, {name: Fernet token}; never plaintext.
    secrets = models.JSONField(default=dict, blank=True)
    #: Field names lower layers may not change (system and group layers only).
    locked = models.JSONField(default=list, blank=True)
    #: Group limits: empty means no limit.
    allowed_providers = models.JSONField(default=list, blank=True)
    allowed_models = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind"], condition=Q(scope="system"), name="pref_one_system_layer_per_kind"
            ),
            models.UniqueConstraint(
                fields=["group", "kind"],
                condition=Q(scope="group"),
                name="pref_one_group_layer_per_kind",
            ),
            models.UniqueConstraint(
                fields=["user", "kind"],
                condition=Q(scope="user"),
                name="pref_one_user_layer_per_kind",
            ),
            models.CheckConstraint(
                condition=(
                    Q(scope="system", group__isnull=True, user__isnull=True)
                    | Q(scope="group", group__isnull=False, user__isnull=True)
                    | Q(scope="user", group__isnull=True, user__isnull=False)
                ),
                name="pref_scope_matches_owner",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["llm", "tts", "stt"]), name="pref_kind_valid"
            ),
        ]
        ordering = ["scope", "kind", "id"]

    def __str__(self) -> str:
        return f"{self.label} {self.kind}"

    @property
    def label(self) -> str:
        """The source name used in effective configs: system, group:<name> or user."""
        if self.scope == Scope.GROUP and self.group is not None:
            return f"group:{self.group.name}"
        return str(self.scope)

    def clean(self) -> None:
        if self.scope == Scope.USER and (
            self.locked or self.allowed_providers or self.allowed_models
        ):
            raise ValidationError(
                {"locked": ["Only system and group layers lock or limit fields."]}
            )
        if self.scope == Scope.SYSTEM and (self.allowed_providers or self.allowed_models):
            raise ValidationError({"allowed_providers": ["Limits apply to group layers only."]})
        for name in ("locked", "allowed_providers", "allowed_models"):
            value = getattr(self, name)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValidationError({name: ["Must be a list of strings."]})
        if not isinstance(self.values, dict) or not isinstance(self.secrets, dict):
            raise ValidationError({"values": ["Must be an object."]})
