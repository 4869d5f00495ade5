"""A user-created skill: instructions the model loads on demand, optionally shared with groups."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

SKILL_NAME_VALIDATOR = RegexValidator(
    r"^[a-z0-9][a-z0-9_-]{0,63}$",
    "Use 1-64 lower-case letters, digits, '-' or '_', starting with a letter or digit.",
)


class Skill(models.Model):
    """Owned by one user; visible to the owner and to members of `shared_with_groups`."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="skills"
    )
    name = models.CharField(max_length=64, validators=[SKILL_NAME_VALIDATOR])
    description = models.CharField(max_length=255)
    emoji = models.CharField(max_length=16, blank=True)
    features = models.JSONField(default=list, blank=True)
    instructions = models.TextField(blank=True)
    #: Extra files of the skill folder (`scripts/…`, `examples/…`): relative path -> text.
    files = models.JSONField(default=dict, blank=True)
    is_enabled = models.BooleanField(default=True)
    shared_with_groups = models.ManyToManyField(Group, blank=True, related_name="shared_skills")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="tools_skill_unique_per_owner"),
        ]

    def __str__(self) -> str:
        return self.name
