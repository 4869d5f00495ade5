"""Which provider, model and key a session's turn uses: the preferences selector decides."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from providers.llm import LLMSettings

if TYPE_CHECKING:
    from accounts.models import User
    from sessions_app.models import ChatSession


def session_override(session: ChatSession) -> dict[str, Any] | None:
    """The session's own provider/model choice, layered over the user's preferences."""
    override = {k: getattr(session, k) for k in ("provider", "model") if getattr(session, k)}
    return override or None


def llm_settings_for(*, user: User, session: ChatSession, timeout: float) -> LLMSettings:
    """Resolve through `preferences.selectors.effective_config` (session override first)."""
    from preferences.selectors import effective_config

    config = effective_config(user=user, kind="llm", session_override=session_override(session))
    values = dict(config.values)
    temperature = values.get("temperature")
    return LLMSettings(
        provider=str(config.provider or ""),
        model=str(values.get("model") or ""),
        api_key=str(values.get("api_key") or ""),
        base_url=str(values.get("base_url") or ""),
        timeout=float(values.get("timeout") or timeout),
        max_tokens=int(values.get("max_tokens") or 4096),
        temperature=float(temperature) if temperature not in (None, "") else None,
    )
