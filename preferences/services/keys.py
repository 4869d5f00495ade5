"""Re-encrypt every stored secret under the first field key."""

from __future__ import annotations

from django.db import transaction

from preferences import crypto, selectors
from preferences.errors import SecretUnavailable


class UndecryptableSecrets(SecretUnavailable):
    code = "secret_unavailable"


def field_keys_rotate() -> int:
    """Re-encrypt all secrets with the first key; returns how many were rewritten.

    Checks every secret first: if any cannot be decrypted with the current keys (a key still
    in use was dropped), raises UndecryptableSecrets naming the rows and fields, and writes
    nothing.
    """
    with transaction.atomic():
        layers = list(selectors.all_layers().select_for_update())
        broken = [
            f"layer {layer.pk} ({layer.label} {layer.kind}) field {name}"
            for layer in layers
            for name, token in layer.secrets.items()
            if not crypto.can_decrypt(token)
        ]
        if broken:
            raise UndecryptableSecrets(
                "Some secrets cannot be decrypted with the current keys; add the missing key "
                "back to CORTEX_FIELD_KEYS (after the new first key): " + "; ".join(broken)
            )
        count = 0
        for layer in layers:
            if not layer.secrets:
                continue
            layer.secrets = {name: crypto.reencrypt(t) for name, t in layer.secrets.items()}
            layer.full_clean()
            layer.save(update_fields=["secrets"])
            count += len(layer.secrets)
    return count
