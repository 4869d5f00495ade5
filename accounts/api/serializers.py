"""Input and output serializers of the accounts API (one per direction and endpoint)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from accounts.models import DefaultApprovalPolicy


class AuditEventOutput(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    actor = serializers.IntegerField(source="actor_id", allow_null=True, read_only=True)
    actor_label = serializers.CharField(read_only=True)
    action = serializers.CharField(read_only=True)
    target_type = serializers.CharField(read_only=True)
    target_id = serializers.CharField(read_only=True)
    # The API field `source` (DRF reads declared fields; the stubs see Field.source).
    source = serializers.CharField(read_only=True)  # type: ignore[assignment]
    client_ip = serializers.IPAddressField(allow_null=True, read_only=True)
    user_agent = serializers.CharField(read_only=True)
    details = serializers.DictField(read_only=True)


# --- sign-in ---------------------------------------------------------------------------------


class LoginInput(serializers.Serializer):
    email = serializers.CharField(max_length=254)
    password = serializers.CharField(
        max_length=4096, trim_whitespace=False, style={"input_type": "password"}
    )


class CsrfOutput(serializers.Serializer):
    csrf_token = serializers.CharField(read_only=True)


class WsTicketOutput(serializers.Serializer):
    ticket = serializers.CharField(read_only=True)
    expires_in = serializers.IntegerField(read_only=True)


# --- me --------------------------------------------------------------------------------------


class GroupRefOutput(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)


class MeOutput(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    email = serializers.EmailField(read_only=True)
    display_name = serializers.CharField(read_only=True)
    is_staff = serializers.BooleanField(read_only=True)
    groups = GroupRefOutput(many=True, read_only=True, source="groups.all")
    date_joined = serializers.DateTimeField(read_only=True)
    default_approval_policy = serializers.CharField(
        read_only=True, help_text="`ask` or `auto`: what new chats start with."
    )


class MeUpdateInput(serializers.Serializer):
    display_name = serializers.CharField(max_length=150, allow_blank=True, required=False)
    default_approval_policy = serializers.ChoiceField(
        choices=DefaultApprovalPolicy.choices, required=False
    )


class PasswordChangeInput(serializers.Serializer):
    current_password = serializers.CharField(
        max_length=4096, trim_whitespace=False, style={"input_type": "password"}
    )
    new_password = serializers.CharField(
        max_length=4096, trim_whitespace=False, style={"input_type": "password"}
    )


class TokenCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    expires_days = serializers.IntegerField(
        min_value=1, max_value=3650, required=False, allow_null=True
    )


class TokenOutput(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)
    prefix = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    expires_at = serializers.DateTimeField(read_only=True, allow_null=True)
    last_used_at = serializers.DateTimeField(read_only=True, allow_null=True)
    revoked_at = serializers.DateTimeField(read_only=True, allow_null=True)


class TokenCreatedOutput(TokenOutput):
    token = serializers.CharField(read_only=True, source="plaintext", help_text="Shown only once.")


# --- admin -----------------------------------------------------------------------------------


class AdminUserCreateInput(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(
        max_length=4096, required=False, allow_blank=True, trim_whitespace=False
    )
    display_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    is_staff = serializers.BooleanField(required=False, default=False)


class AdminUserUpdateInput(serializers.Serializer):
    email = serializers.EmailField(max_length=254, required=False)
    password = serializers.CharField(max_length=4096, required=False, trim_whitespace=False)
    display_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    is_staff = serializers.BooleanField(required=False)
    is_active = serializers.BooleanField(required=False)


class AdminUserOutput(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    email = serializers.EmailField(read_only=True)
    display_name = serializers.CharField(read_only=True)
    is_staff = serializers.BooleanField(read_only=True)
    is_active = serializers.BooleanField(read_only=True)
    groups = GroupRefOutput(many=True, read_only=True, source="groups.all")
    oidc_linked = serializers.SerializerMethodField()
    date_joined = serializers.DateTimeField(read_only=True)
    last_login = serializers.DateTimeField(read_only=True, allow_null=True)

    def get_oidc_linked(self, obj: object) -> bool:
        return bool(getattr(obj, "oidc_sub", None))


class GroupInput(serializers.Serializer):
    name = serializers.CharField(max_length=150)


class GroupOutput(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)
    members = serializers.SerializerMethodField(help_text="Ids of the member users.")

    def get_members(self, obj: Any) -> list[int]:
        return [user.pk for user in obj.user_set.all()]


class GroupMemberInput(serializers.Serializer):
    user = serializers.IntegerField(min_value=1)


class AppConfigOutput(serializers.Serializer):
    allow_password_login = serializers.BooleanField(read_only=True)
    password_login_env = serializers.BooleanField(
        read_only=True, help_text="CORTEX_ALLOW_PASSWORD_LOGIN; when off, nothing turns it on."
    )
    password_login_effective = serializers.BooleanField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


class AppConfigUpdateInput(serializers.Serializer):
    allow_password_login = serializers.BooleanField(required=False)
