"""Small helpers shared by the mesh services: secrets, hashing, validation of JSON settings."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from cortex.errors import ValidationFailed
from mesh.agent.skill_names import SKILLS


def new_secret(prefix: str) -> str:
    """A URL-safe random secret with a readable prefix (`cni_` invites, `cnc_` credentials)."""
    return prefix + secrets.token_urlsafe(32)


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def fingerprint_of(secret: str) -> str:
    """First 12 hex chars of sha256(secret): what the node acknowledges a rotation with."""
    return sha256_hex(secret)[:12]


def same_hash(secret: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented secret with a stored hash."""
    return hmac.compare_digest(sha256_hex(secret), stored_hash)


def clean_skill_config(value: Any, *, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """Validate and complete a skill_config; unknown keys are refused."""
    from mesh.models import default_skill_config

    if value is None:
        return dict(base or default_skill_config())
    if not isinstance(value, dict):
        raise ValidationFailed(fields={"skill_config": ["Must be an object."]})
    merged = {**(base or default_skill_config()), **value}
    problems: list[str] = []
    for key in value:
        if key not in (*SKILLS, "max_concurrent_tasks"):
            problems.append(f"Unknown key {key!r}.")
    for skill in SKILLS:
        if not isinstance(merged.get(skill), bool):
            problems.append(f"{skill} must be true or false.")
    limit = merged.get("max_concurrent_tasks")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 64:
        problems.append("max_concurrent_tasks must be an integer from 1 to 64.")
    if problems:
        raise ValidationFailed(fields={"skill_config": problems})
    return merged


def clean_sandbox_policy(value: Any) -> dict[str, Any]:
    """Validate a sandbox policy with the agent's own parser (the node parses it the same way)."""
    from mesh.agent.sandbox import Policy

    if not isinstance(value, dict):
        raise ValidationFailed(fields={"sandbox_policy": ["Must be an object."]})
    try:
        return Policy.from_dict(value).to_dict()
    except ValueError as exc:
        raise ValidationFailed(fields={"sandbox_policy": [str(exc)]}) from exc
