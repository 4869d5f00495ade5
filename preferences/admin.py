"""Django admin for preference layers: secrets are write-only and only ever shown masked."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from accounts.context import AuditContext
from accounts.selectors import user_signed_in
from cortex.errors import CortexError
from preferences import params, selectors
from preferences.models import PreferenceLayer
from preferences.services import layer_check, layer_update


class PreferenceLayerForm(forms.ModelForm):
    """Non-secret fields as JSON; the API key as a write-only password box."""

    api_key = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave blank to keep the stored key.",
    )
    clear_api_key = forms.BooleanField(required=False, help_text="Remove the stored key.")

    def service_data(self) -> dict[str, Any]:
        """The form as a layer_update body (replace semantics; a blank key box keeps the key)."""
        cleaned = self.cleaned_data
        kind = cleaned.get("kind") or ""
        data: dict[str, Any] = {"provider": cleaned.get("provider") or ""}
        data.update(cleaned.get("values") or {})
        for name in ("locked", "allowed_providers", "allowed_models"):
            data[name] = cleaned.get(name) or []
        if cleaned.get("clear_api_key"):
            data["api_key"] = None
        elif cleaned.get("api_key"):
            data["api_key"] = cleaned["api_key"]
        elif "api_key" not in data:
            data["api_key"] = {"configured": True}
        if kind and "api_key" not in params.known_parameters(kind, data["provider"]):
            data.pop("api_key", None)
        return data

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data  # what ModelForm.clean returns (the stubs allow None)
        if self.errors or cleaned.get("kind") is None:
            return cleaned
        try:
            layer_check(
                scope=cleaned["scope"],
                kind=cleaned["kind"],
                user=cleaned.get("user"),
                group=cleaned.get("group"),
                data=self.service_data(),
                replace=True,
            )
        except CortexError as exc:
            for name, messages in (exc.fields or {"__all__": [exc.message]}).items():
                target = name if name in self.fields else None
                for message in messages:
                    self.add_error(target, f"{name}: {message}" if target is None else message)
        return cleaned

    class Meta:
        model = PreferenceLayer
        fields = [
            "scope",
            "group",
            "user",
            "kind",
            "provider",
            "values",
            "locked",
            "allowed_providers",
            "allowed_models",
        ]


@admin.register(PreferenceLayer)
class PreferenceLayerAdmin(admin.ModelAdmin):
    form = PreferenceLayerForm
    list_display = ("scope", "owner", "kind", "provider", "masked_secrets", "updated_at")
    list_filter = ("scope", "kind", "provider")
    search_fields = ("user__email", "group__name", "provider")
    readonly_fields = ("masked_secrets", "updated_at", "updated_by")
    list_select_related = ("group", "user")

    @admin.display(description="owner")
    def owner(self, obj: PreferenceLayer) -> str:
        return obj.user.email if obj.user else (obj.group.name if obj.group else "—")

    @admin.display(description="secrets")
    def masked_secrets(self, obj: PreferenceLayer) -> str:
        parts = []
        for name, token in sorted(obj.secrets.items()):
            masked = selectors.mask_ciphertext(token)
            shown = "unavailable" if masked.get("error") else f"…{masked['last4']}"
            parts.append(f"{name}: configured ({shown})")
        return ", ".join(parts) or "—"

    def save_model(
        self, request: HttpRequest, obj: PreferenceLayer, form: Any, change: bool
    ) -> None:
        """Writes go through the service, so validation, encryption and audit are the same."""
        data = form.service_data()
        layer = layer_update(
            actor=user_signed_in(user=request.user),
            scope=obj.scope,
            kind=obj.kind,
            user=obj.user,
            group=obj.group,
            data=data,
            replace=True,
            audit_context=AuditContext.admin(request),
        )
        obj.pk = layer.pk
