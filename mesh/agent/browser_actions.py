"""The one contract for browser work: actions, their arguments, validation and the domain policy.

Pure data and checks (no Django, Python 3.9+): the hub's `browser` tool builds its JSON Schema
from `ACTIONS` and validates a call with `validate_action` before dispatching it; the node's
browser skill validates the same payload again with the same function before it acts. The
domain policy (`BrowserPolicy`, `url_refusal`) is the sandbox policy's `browser` part, parsed the
same way on both sides; only the node resolves names (DNS), the hub checks what it can without.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .workspace import WorkspaceError, clean_relative_path

MAX_URL = 4096
MAX_SELECTOR = 2048
MAX_TEXT_ARG = 20_000
MAX_SCRIPT = 20_000
MAX_TIMEOUT = 300.0

# -- arguments ---------------------------------------------------------------------------------
# name -> JSON Schema of the value. An action lists which of these it requires and allows.
ARGUMENTS: dict[str, dict[str, Any]] = {
    "url": {"type": "string", "minLength": 1, "maxLength": MAX_URL, "pattern": "^https?://"},
    "selector": {"type": "string", "minLength": 1, "maxLength": MAX_SELECTOR},
    "ref": {"type": "string", "pattern": "^e[0-9]{1,7}$"},
    "text": {"type": "string", "maxLength": MAX_TEXT_ARG},
    "key": {"type": "string", "minLength": 1, "maxLength": 64},
    "value": {"type": "string", "maxLength": MAX_TEXT_ARG},
    "submit": {"type": "boolean"},
    "direction": {"type": "string", "enum": ["up", "down", "left", "right"]},
    "amount": {"type": "integer", "minimum": 1, "maximum": 100_000},
    "state": {"type": "string", "enum": ["visible", "hidden", "attached", "detached"]},
    "script": {"type": "string", "minLength": 1, "maxLength": MAX_SCRIPT},
    "full_page": {"type": "boolean"},
    "tab": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
}


@dataclass(frozen=True)
class Action:
    """One browser action: what it does, what it needs, and whether it changes things."""

    name: str
    description: str
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    #: exactly one of these must be given (an element: `ref` from a snapshot, or a `selector`)
    one_of: tuple[str, ...] = ()
    #: "read" looks, "network" goes somewhere, "write" enters data into a page (approvals)
    risk: str = "network"
    #: needs the node policy's permission and a person's approval every time
    needs_approval: bool = False


_TARGET = ("ref", "selector")
ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action("navigate", "open `url` in the current tab", required=("url",)),
        Action("back", "go back in the current tab's history"),
        Action("reload", "reload the current tab"),
        Action("click", "click an element", one_of=_TARGET),
        Action("hover", "move the mouse over an element", one_of=_TARGET),
        Action(
            "type",
            "type `text` into an element (replacing its value); `submit` presses Enter",
            required=("text",),
            optional=("submit",),
            one_of=_TARGET,
            risk="write",
        ),
        Action(
            "press",
            "press `key` (e.g. Enter, Tab, Control+A) in an element or the page",
            required=("key",),
            optional=_TARGET,
            risk="write",
        ),
        Action(
            "select",
            "choose the option with `value` (or label) in a <select>",
            required=("value",),
            one_of=_TARGET,
            risk="write",
        ),
        Action(
            "scroll",
            "scroll the page (`direction`, `amount` pixels) or an element into view",
            optional=("direction", "amount", *_TARGET),
        ),
        Action(
            "wait",
            "wait until an element (`selector`/`ref`, `state`) or a `text` is on the page",
            optional=("selector", "ref", "text", "state"),
        ),
        Action("text", "read the page's visible text (or an element's)", optional=_TARGET),
        Action(
            "snapshot",
            "the page's accessibility tree with element refs like [ref=e12] to act on",
            risk="read",
        ),
        Action("screenshot", "a PNG of the tab (shown to the user)", optional=("full_page",)),
        Action(
            "evaluate",
            "run JavaScript `script` in the page and return its JSON value (node policy and "
            "approval required)",
            required=("script",),
            risk="write",
            needs_approval=True,
        ),
        Action("tabs", "list this session's tabs", risk="read"),
        Action(
            "tab_new", "open a new tab (optionally at `url`) and make it current", optional=("url",)
        ),
        Action("tab_select", "make tab `tab` current", required=("tab",), risk="read"),
        Action("tab_close", "close tab `tab` (default: the current one)", risk="read"),
        Action("close", "close this chat session's browser (all tabs)", risk="read"),
    )
}
#: Every action may name the tab it acts on (default: the current tab).
COMMON = ("tab",)
#: Keys only the hub sets in a payload: the chat session, the approval mark, where the
#: session's downloads go (`downloads_target`).
HUB_KEYS = ("session", "confirmed", "downloads")
#: The folder (inside the session's workspace folder, or the node's workspace root without
#: one) that downloads are saved in.
DOWNLOADS_DIR = "downloads"
#: The largest `max_bytes` a `downloads` target may name (2**53: any JSON number is exact).
MAX_DOWNLOAD_CAP = 1 << 53
#: Actions whose target may load another URL: checked against the domain policy.
URL_ACTIONS = ("navigate", "tab_new")


class ActionError(ValueError):
    """A payload that does not follow the contract; `code` is stable."""

    def __init__(self, message: str, code: str = "invalid_arguments") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def action_arguments(action: Action) -> tuple[str, ...]:
    names = (*action.required, *action.optional, *action.one_of, *COMMON)
    return tuple(dict.fromkeys(names))


def _type_ok(value: Any, schema: dict[str, Any]) -> bool:
    kind = schema["type"]
    if kind == "string":
        if not isinstance(value, str):
            return False
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", 1e9):
            return False
        if "enum" in schema and value not in schema["enum"]:
            return False
        return not ("pattern" in schema and re.search(schema["pattern"], value) is None)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return False
        return schema.get("minimum", -1e18) <= value <= schema.get("maximum", 1e18)
    return False  # pragma: no cover - every schema above has a known type


def validate_action(payload: Any, *, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """The payload checked against its action; raises ActionError naming the first problem.

    `extra` names further keys the caller tolerates (the tool's `node_id`, `timeout`; the
    node's `session`, `confirmed`). Unknown keys are refused: what is not understood is not run.
    """
    if not isinstance(payload, dict):
        raise ActionError("The arguments must be an object.")
    name = payload.get("action")
    action = ACTIONS.get(name) if isinstance(name, str) else None
    if action is None:
        raise ActionError(f"action must be one of {', '.join(ACTIONS)}.", code="invalid_action")
    allowed = action_arguments(action)
    for key, value in payload.items():
        if key == "action" or key in extra:
            continue
        if key not in allowed:
            raise ActionError(f"'{key}' is not an argument of {name}.")
        if not _type_ok(value, ARGUMENTS[key]):
            raise ActionError(f"'{key}' is not a valid value for {name}.")
    for key in action.required:
        if key not in payload:
            raise ActionError(f"{name} needs '{key}'.")
    if action.one_of:
        given = [k for k in action.one_of if k in payload]
        if len(given) != 1:
            raise ActionError(f"{name} needs exactly one of {' or '.join(action.one_of)}.")
    if name == "wait" and not any(k in payload for k in ("selector", "ref", "text")):
        raise ActionError("wait needs a selector, a ref or a text.")
    if name == "wait" and "text" in payload and ("selector" in payload or "ref" in payload):
        raise ActionError("wait takes a text or an element, not both.")
    if name == "scroll" and ("ref" in payload and "selector" in payload):
        raise ActionError("scroll takes a ref or a selector, not both.")
    if name == "press" and ("ref" in payload and "selector" in payload):
        raise ActionError("press takes a ref or a selector, not both.")
    return dict(payload)


def downloads_target(value: Any) -> tuple[str, int] | None:
    """The hub's `downloads` key checked: (the session's workspace folder relative to the node's
    workspace root, "." for the root itself; the most bytes a download kept there may have).

    None when the key is absent (no session workspace: downloads stay where they always went).
    Fails closed with ActionError `invalid_downloads`: the value must be exactly
    `{"folder": <canonical relative path or ".">, "max_bytes": <int >= 0>}`; a folder that the
    workspace path rule would rewrite (`a//b`, `./a`, `a/`), let alone refuse, is refused.
    """
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"folder", "max_bytes"}:
        raise ActionError(
            "downloads must be an object with exactly folder and max_bytes.",
            code="invalid_downloads",
        )
    folder, cap = value["folder"], value["max_bytes"]
    if isinstance(cap, bool) or not isinstance(cap, int) or not 0 <= cap <= MAX_DOWNLOAD_CAP:
        raise ActionError(
            "downloads.max_bytes must be a whole number of bytes.", "invalid_downloads"
        )
    if folder != ".":
        try:
            clean = clean_relative_path(folder)
        except WorkspaceError as exc:
            raise ActionError(f"downloads.folder: {exc}", code="invalid_downloads") from exc
        if clean != folder:
            raise ActionError("downloads.folder is not a canonical path.", "invalid_downloads")
    return folder, cap


def json_schema(*, extra_properties: dict[str, Any] | None = None) -> dict[str, Any]:
    """One flat JSON Schema for every action (what LLM APIs accept); `validate_action` adds the
    per-action rules the flat form cannot say."""
    lines = [f"{a.name}: {a.description}" for a in ACTIONS.values()]
    properties: dict[str, Any] = dict(extra_properties or {})
    properties["action"] = {
        "type": "string",
        "enum": list(ACTIONS),
        "description": "; ".join(lines),
    }
    for key, schema in ARGUMENTS.items():
        properties[key] = dict(schema)
    return {
        "type": "object",
        "properties": properties,
        "required": ["action"],
        "additionalProperties": False,
    }


# -- domain policy ------------------------------------------------------------------------------
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")


@dataclass(frozen=True)
class BrowserPolicy:
    """The `browser` part of a node's sandbox policy.

    `allowed_domains` empty: any public host. Entries are host names (`example.com` also covers
    its subdomains; `*.example.com` only the subdomains), IP addresses or CIDR networks. Deny
    wins. Private, loopback, link-local and other non-public addresses are refused unless an
    IP or network entry in `allowed_domains` covers them, or `allow_private_networks` is set.
    """

    allowed_domains: tuple[str, ...] = ()
    denied_domains: tuple[str, ...] = ()
    allow_private_networks: bool = False
    allow_evaluate: bool = False
    allow_downloads: bool = True
    networks_allowed: tuple[Any, ...] = field(default=(), compare=False, repr=False)
    networks_denied: tuple[Any, ...] = field(default=(), compare=False, repr=False)

    KEYS = (
        "allowed_domains",
        "denied_domains",
        "allow_private_networks",
        "allow_evaluate",
        "allow_downloads",
    )

    @classmethod
    def from_dict(cls, data: Any) -> BrowserPolicy:
        """Validate and build; raises ValueError with a readable message."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ValueError("browser must be an object")
        unknown = set(data) - set(cls.KEYS)
        if unknown:
            raise ValueError(f"browser: unknown keys: {', '.join(sorted(unknown))}")
        lists: dict[str, tuple[str, ...]] = {}
        nets: dict[str, list[Any]] = {"allowed_domains": [], "denied_domains": []}
        for key in ("allowed_domains", "denied_domains"):
            value = data.get(key) or []
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"browser.{key} must be a list of strings")
            cleaned = []
            for entry in value:
                entry = entry.strip().lower()
                if not entry:
                    continue
                network = _network(entry)
                if network is not None:
                    nets[key].append(network)
                elif not _valid_pattern(entry):
                    raise ValueError(f"browser.{key}: {entry!r} is not a host name, IP or network")
                cleaned.append(entry)
            lists[key] = tuple(cleaned)
        flags: dict[str, bool] = {}
        for key, default in (
            ("allow_private_networks", False),
            ("allow_evaluate", False),
            ("allow_downloads", True),
        ):
            value = data.get(key, default)
            if not isinstance(value, bool):
                raise ValueError(f"browser.{key} must be true or false")
            flags[key] = value
        return cls(
            allowed_domains=lists["allowed_domains"],
            denied_domains=lists["denied_domains"],
            allow_private_networks=flags["allow_private_networks"],
            allow_evaluate=flags["allow_evaluate"],
            allow_downloads=flags["allow_downloads"],
            networks_allowed=tuple(nets["allowed_domains"]),
            networks_denied=tuple(nets["denied_domains"]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed_domains": list(self.allowed_domains),
            "denied_domains": list(self.denied_domains),
            "allow_private_networks": self.allow_private_networks,
            "allow_evaluate": self.allow_evaluate,
            "allow_downloads": self.allow_downloads,
        }


def _network(entry: str) -> Any:
    try:
        return ipaddress.ip_network(entry.strip("[]"), strict=False)
    except ValueError:
        return None


def _valid_pattern(entry: str) -> bool:
    name = entry[2:] if entry.startswith("*.") else entry
    labels = name.split(".")
    if not labels or not all(_LABEL.match(label) for label in labels):
        return False
    return not _NUMERIC_LABEL.match(labels[-1])


def _host_matches(host: str, entry: str) -> bool:
    if entry.startswith("*."):
        return host.endswith(entry[1:])
    return host == entry or host.endswith("." + entry)


def _public(address: Any) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return bool(address.is_global) and not address.is_multicast


def address_refusal(policy: BrowserPolicy, address: Any) -> str | None:
    """Why an IP address may not be reached, or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in net for net in policy.networks_denied):
        return f"{address} is denied by the node's browser policy"
    if any(address in net for net in policy.networks_allowed):
        return None
    if not _public(address) and not policy.allow_private_networks:
        return f"{address} is a private or local address; the node's policy does not allow it"
    return None


def split_url(url: Any) -> tuple[str, Any | None]:
    """(normalised host, IP address or None) of an http(s) URL; raises ActionError when the URL
    is odd in any way a checker could misread (fail closed)."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise ActionError("The URL is missing or too long.", code="url_not_allowed")
    if any(ord(c) <= 0x20 or c in "\\\x7f" for c in url):
        raise ActionError(
            "The URL contains spaces, control characters or backslashes.", "url_not_allowed"
        )
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a bad port
    except ValueError as exc:
        raise ActionError("The URL cannot be parsed.", code="url_not_allowed") from exc
    del port
    if parts.scheme not in ("http", "https"):
        raise ActionError("Only http and https URLs may be opened.", code="url_not_allowed")
    netloc = parts.netloc
    if "@" in netloc or parts.username is not None or parts.password is not None:
        raise ActionError("URLs with a user name or password are refused.", code="url_not_allowed")
    host = parts.hostname or ""
    if not host:
        raise ActionError("The URL has no host.", code="url_not_allowed")
    if netloc.startswith("[") or ":" in host:
        raise ActionError("IPv6 address literals are refused.", code="url_not_allowed")
    if not host.isascii() or "%" in host or host.startswith("xn--") or ".xn--" in host:
        raise ActionError(
            "Internationalised (IDN) or encoded host names are refused.", code="url_not_allowed"
        )
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]
    labels = host.split(".")
    if any(_NUMERIC_LABEL.match(label) for label in labels):
        try:  # only the canonical dotted quad: no decimal, octal, hex or short forms
            address = ipaddress.IPv4Address(host)
        except ValueError as exc:
            raise ActionError(
                "Numeric host names other than a dotted IPv4 address are refused.",
                code="url_not_allowed",
            ) from exc
        if str(address) != host:
            raise ActionError("Non-canonical IPv4 addresses are refused.", code="url_not_allowed")
        return host, address
    if not all(_LABEL.match(label) for label in labels):
        raise ActionError("The host name is not valid.", code="url_not_allowed")
    return host, None


def url_refusal(policy: BrowserPolicy, url: Any) -> str | None:
    """Why `url` may not be opened under `policy` (without DNS), or None.

    A name is checked against the lists here; the node also refuses a name that resolves to an
    address `address_refusal` refuses. `localhost` and `*.localhost` are refused like loopback.
    """
    try:
        host, address = split_url(url)
    except ActionError as exc:
        return exc.message
    if address is not None:
        if any(address in net for net in policy.networks_denied):
            return f"{host} is denied by the node's browser policy"
        if policy.allowed_domains and not any(address in net for net in policy.networks_allowed):
            return f"{host} is not in the node's allowed domains"
        return address_refusal(policy, address)
    if any(_host_matches(host, e) for e in policy.denied_domains if _network(e) is None):
        return f"{host} is denied by the node's browser policy"
    names = [e for e in policy.allowed_domains if _network(e) is None]
    if policy.allowed_domains and not any(_host_matches(host, e) for e in names):
        return f"{host} is not in the node's allowed domains"
    if host == "localhost" or host.endswith(".localhost"):
        return address_refusal(policy, ipaddress.IPv4Address("127.0.0.1"))
    return None
