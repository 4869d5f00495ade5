"""Every stable error code the hub answers with, in one catalogue. Codes are API: add, never rename.

Each entry names the code, the HTTP status a REST call answers it with, and one line on what it
means. The same code rides in a WebSocket `error` frame and in gRPC trailing metadata
(`cortex-error-code`, status from `mesh/grpc/status.py`); `status` None marks a code that never
comes back over HTTP. `where` says which transports can carry it.

Kept honest by `cortex/tests/test_error_codes.py`: every code the source raises is here, every
code here is still raised, no published code (`docs/error-codes-published.txt`) disappears, and
`docs/errors.md` is this table rendered (`python -m cortex.error_codes > docs/errors.md`). The
OpenAPI schema lists it as `x-error-codes` (see `cortex.api.schema.add_error_responses`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Where = Literal["http", "ws", "grpc", "http+ws", "node"]


@dataclass(frozen=True, slots=True)
class ErrorCode:
    code: str
    status: int | None
    meaning: str
    where: Where = "http+ws"


def _table(*entries: ErrorCode) -> dict[str, ErrorCode]:
    table: dict[str, ErrorCode] = {}
    for entry in entries:
        if entry.code in table:
            raise ValueError(f"error code {entry.code!r} is catalogued twice")
        table[entry.code] = entry
    return dict(sorted(table.items()))


E = ErrorCode

CATALOGUE: dict[str, ErrorCode] = _table(
    # --- categories (cortex.errors) and the HTTP layer (cortex.api) -----------------------------
    E("error", 400, "A domain error without a code of its own (a bug: every error names one)."),
    E("invalid_input", 400, "Some fields are invalid; `fields` says which and why."),
    E("not_authenticated", 401, "No valid session, bearer token or ticket came with the request."),
    E(
        "authentication_failed",
        401,
        "The bearer token is malformed, unknown, expired or revoked.",
        "http",
    ),
    E("permission_denied", 403, "Signed in, but not allowed to do this."),
    E("not_found", 404, "No such object, or it is outside your grants."),
    E("method_not_allowed", 405, "This path does not accept this HTTP method.", "http"),
    E("not_acceptable", 406, "No representation matches the Accept header.", "http"),
    E("conflict", 409, "The request conflicts with the current state."),
    E("protected", 409, "The object is still referenced and cannot be deleted.", "http"),
    E("unsupported_media_type", 415, "The body's content type (or audio format) is not accepted."),
    E("throttled", 429, "Too many requests; Retry-After says when to try again.", "http"),
    E("too_many_waits", 429, "Too many long-poll waits are open at once; retry shortly.", "http"),
    E("server_error", 500, "An unexpected error; it was logged (no details are sent).", "http"),
    E("unavailable", 503, "A service the request depends on is unavailable."),
    E("internal_error", None, "An unexpected error on a socket or node stream (logged).", "ws"),
    E(
        "malformed_request",
        400,
        "The body could not be parsed, or Content-Length is invalid.",
        "http",
    ),
    E("bad_request", 400, "The request could not be understood (Django refused it).", "http"),
    E("request_too_large", 413, "The body is larger than this endpoint accepts.", "http"),
    E("too_many_fields", 400, "The form has too many fields.", "http"),
    E("too_many_files", 413, "The multipart body has too many files.", "http"),
    E("too_deeply_nested", 400, "The JSON body is nested too deeply to read.", "http"),
    # --- WebSocket frames (cortex.consumers, sessions_app.consumers) -------------------------
    E("invalid_frame", 400, "A client frame is not a JSON object with a known `type`.", "ws"),
    E("frame_too_large", 400, "A client frame is larger than the socket accepts.", "ws"),
    E("unsupported_frame", 400, "This socket does not take this frame type (read-only).", "ws"),
    # --- accounts ---
    E("invalid_credentials", 401, "The email or password is not correct.", "http"),
    E("password_login_disabled", 403, "Password sign-in is turned off on this hub.", "http"),
    E(
        "oidc_user_refused",
        403,
        "The OIDC sign-in was refused (inactive or unlinkable user).",
        "http",
    ),
    E("email_taken", 409, "A user with this email exists already.", "http"),
    E("group_name_taken", 409, "A group with this name exists already.", "http"),
    E("group_not_found", 404, "No such group.", "http"),
    E("cannot_deactivate_self", 400, "Admins cannot deactivate their own account.", "http"),
    E("field_not_writable", 400, "A field sent cannot be changed through this endpoint.", "http"),
    E("wrong_password", 400, "The current password is not correct.", "http"),
    # --- nodes, invites and install links (mesh) --------------------------------------------
    E("node_exists", 409, "A node with this id already exists.", "http"),
    E("node_inactive", 409, "The node is deactivated."),
    E("node_offline", 409, "The node is offline and the action cannot wait for it.", "http"),
    E("grant_not_found", 404, "The group has no access to this node.", "http"),
    E(
        "invite_pending",
        409,
        "A bundle would replace the pending invite: ask for ?invite=new or ?invite=none.",
        "http",
    ),
    E("invite_invalid", 401, "The invite token is not valid for this node.", "grpc"),
    E("invite_expired", 401, "The invite has expired.", "grpc"),
    E("invite_used", 401, "The invite was already used.", "grpc"),
    E("invite_revoked", 401, "The invite was revoked.", "grpc"),
    E("invalid_credential", None, "The node's id/credential pair is missing or wrong.", "grpc"),
    E("install_link_invalid", 404, "The install link is not valid.", "http"),
    E("install_link_used", 410, "The install link was already used (a link works once).", "http"),
    E("install_link_expired", 410, "The install link has expired.", "http"),
    E(
        "wheels_unavailable",
        503,
        "The agent's wheels for that Python/platform could not be fetched.",
        "http",
    ),
    # --- tasks (mesh) ---
    E("task_not_found", 404, "No such task (on this node), or it is outside your grants."),
    E("capability_missing", 409, "The node does not offer the skill this task needs."),
    E("skill_disabled", 409, "The skill is switched off on the node."),
    E("command_not_allowed", 403, "The node's sandbox policy does not allow this command."),
    E("confirmation_required", 409, "A sensitive command: send it again with confirm true."),
    E("idempotency_conflict", 409, "The idempotency key was used for a different request.", "http"),
    E("file_too_large", 413, "The pushed or uploaded file is larger than the limit.", "http"),
    E("push_blob_missing", 404, "The staged file for a push is gone.", "grpc"),
    E(
        "files_failed",
        409,
        "The node could not do the file action (its own code when it gave one).",
        "http",
    ),
    E("files_unfinished", 504, "The node did not finish the file action in time.", "http"),
    # --- the node stream (mesh.grpc) ----------------------------------------------------------
    E("hello_required", None, "The node's stream must start with Hello.", "grpc"),
    E("malformed_message", 400, "A protobuf message could not be parsed.", "grpc"),
    E("unexpected_message", 400, "A message the stream does not expect here.", "grpc"),
    E("invalid_capabilities", 400, "Too many or too long capabilities in Hello.", "grpc"),
    E("too_many_held_tasks", 400, "Hello lists more held tasks than allowed.", "grpc"),
    E("invalid_task_id", 400, "A task id is not a UUID.", "grpc"),
    E("invalid_seq", 400, "An output seq is out of range (they start at 1).", "grpc"),
    E("invalid_stream", 400, "Unknown output stream.", "grpc"),
    E("invalid_outcome", 400, "Unknown task outcome.", "grpc"),
    E("invalid_result", 400, "A task result's JSON is not valid.", "grpc"),
    # --- codes of the node's files action, passed through `files_failed` (mesh.agent) ------------
    # --- shared workspaces (workspaces) ---------------------------------------------------------
    E("workspace_disabled", 409, "The session has no workspace (its source is `none`)."),
    E("workspace_too_large", 413, "The write would take the workspace past its size limit."),
    E("workspace_file_too_large", 413, "The file is larger than the per-file workspace limit."),
    E("workspace_path_conflict", 409, "A file and a folder of the workspace would share a path."),
    E("workspace_no_drift", 409, "That node has no drift to keep or promote."),
    E(
        "workspace_drift_not_fetched",
        409,
        "The node's drifted version has not reached the hub yet (or is too large to promote).",
    ),
    E(
        "path_outside_workspace",
        400,
        "The path leaves the workspace (`..`, absolute, `~`, a symlink pointing out).",
    ),
    E(
        "invalid_path",
        400,
        "The path is not usable (empty, a NUL or control character, a backslash, too long).",
    ),
    E("invalid_action", 409, "The files action is not one the node knows.", "node"),
    E("is_a_directory", 409, "The path is a directory where a file was expected.", "node"),
    E("not_a_directory", 409, "The path is not a directory.", "node"),
    E("not_a_file", 409, "The path is not a regular file.", "node"),
    E("too_large", 409, "The file is larger than the node's limit for this action.", "node"),
    E(
        "invalid_range",
        400,
        "A ranged read's offset or length is not a non-negative integer within bounds.",
        "node",
    ),
    E("exists", 409, "Something exists at the path already.", "node"),
    E("checksum_mismatch", 409, "The pushed file's checksum does not match.", "node"),
    E("size_mismatch", 409, "The pushed file's size does not match the announced one.", "node"),
    E("push_incomplete", 409, "Not all of a pushed file arrived before the timeout.", "node"),
    E("push_out_of_order", 409, "A chunk of a pushed file arrived out of order.", "node"),
    E("refused", 409, "The node refused the file action.", "node"),
    E("os_error", 409, "The node's operating system refused the file action.", "node"),
    # --- preferences and providers ---
    E("unknown_provider", 400, "No provider backend with this id."),
    E("provider_not_allowed", 400, "This provider is not allowed for your groups.", "http"),
    E("model_not_allowed", 400, "This model is not allowed for your groups.", "http"),
    E("provider_not_configured", 400, "No provider is configured for this kind."),
    E("missing_parameter", 400, "A required provider parameter is not set.", "http"),
    E("field_locked", 400, "A field is locked by a higher preference layer.", "http"),
    E("blocked_address", 400, "The provider address is not allowed (SSRF guard).", "http"),
    E(
        "secret_unavailable",
        503,
        "A stored secret cannot be decrypted with the field keys.",
        "http",
    ),
    E(
        "unsupported_provider",
        400,
        "The provider cannot do this (speech or transcription).",
        "http",
    ),
    E(
        "unsupported_language",
        400,
        "The local speech model does not understand this language.",
        "http",
    ),
    E("invalid_key", 502, "The provider refused the API key.", "http"),
    E("provider_rejected", 502, "The provider rejected the request.", "http"),
    E("provider_timeout", 504, "The provider did not answer in time.", "http"),
    E("provider_unavailable", 503, "The provider could not be reached.", "http"),
    E("rate_limited", 429, "The provider is rate limiting requests.", "http"),
    E("unknown_voice", 400, "The provider does not know this voice.", "http"),
    E("text_too_long", 400, "The text is too long to speak.", "http"),
    E("audio_too_long", 413, "The audio is too long to transcribe.", "http"),
    E("empty_file", 400, "The uploaded file is empty.", "http"),
    E("undecodable_audio", 400, "The audio could not be decoded.", "http"),
    E(
        "decoder_unavailable",
        415,
        "This audio format cannot be decoded on this hub; send WAV.",
        "http",
    ),
    # --- chat sessions ---
    E("turn_in_progress", 409, "The assistant is still answering; wait or cancel.", "http"),
    E("no_turn_running", 409, "No answer is being produced in this session.", "http"),
    E("session_archived", 409, "The session is archived; unarchive it to continue.", "http"),
    E("node_already_attached", 409, "The node is attached to the session already.", "http"),
    E("approval_already_decided", 409, "The tool call was approved or denied already.", "http"),
    E("rule_not_possible", 400, "This call cannot be allowed by a standing rule.", "http"),
    E("no_audio", 404, "The message has no recording.", "http"),
    E("not_speakable", 400, "Only an assistant message with text can be spoken.", "http"),
    E("nothing_heard", 400, "No words were heard in the recording; nothing was posted.", "http"),
    # --- tools and skills ---
    E("unknown_tool", 400, "No tool with this name.", "http"),
    E("tool_switch_exists", 409, "The tool is switched off for this scope already.", "http"),
    E("skill_name_taken", 409, "A skill with this name exists already.", "http"),
    E("skill_read_only", 403, "System skills (and others' shared skills) are read-only.", "http"),
    # --- infrastructure outages (cortex.faults) ------------------------------------------------
    E("database_unavailable", 503, "The database is unreachable; Retry-After says when to retry."),
    E("channel_layer_unavailable", 503, "The channel layer (Redis) is unreachable; retry shortly."),
    # --- providers ---
    E("context_too_long", 502, "The conversation is longer than the model's context window."),
    # --- terminals (mesh) ---
    E("terminals_not_allowed", 403, "The node's policy does not allow interactive terminals."),
    E("terminal_not_found", 404, "No such terminal session, or it is not yours."),
    E("too_many_terminals", 409, "The node has its maximum of open terminals."),
    E(
        "too_many_held_terminals",
        400,
        "A node reported more held terminals than it may keep.",
        "grpc",
    ),
    E("terminal_already_open", 409, "This socket has a terminal already.", "ws"),
    E("no_terminal", 409, "Open or attach a terminal on this socket first.", "ws"),
    E("terminal_not_ready", 503, "The chat's shell on the node did not answer in time."),
    E("terminal_ended", 409, "The terminal session has ended; open a new one.", "ws"),
    E(
        "terminal_input_backlog",
        409,
        "Too much input is waiting for the node to come back; it was not stored.",
        "ws",
    ),
    # --- browser automation (mesh) ---
    E("url_not_allowed", 403, "The node's browser policy refuses this URL or host."),
    E("evaluate_not_allowed", 403, "The node's browser policy does not allow page scripts."),
    E("screenshot_missing", 404, "This task has no stored screenshot.", "http"),
    # --- scheduled agents ---
    E("agent_paused", 409, "The agent is paused; resume it first.", "http"),
    E("run_too_soon", 429, "The agent ran less than its minimum interval ago.", "http"),
    E(
        "invalid_signature",
        401,
        "The webhook's X-Cortex-Signature (or its X-Cortex-Timestamp) is missing or wrong.",
        "http",
    ),
    E(
        "stale_signature",
        401,
        "The webhook's X-Cortex-Timestamp is outside the accepted window; sign it anew.",
        "http",
    ),
    E(
        "replayed_delivery",
        409,
        "This signed webhook request was delivered already; it starts no second run.",
        "http",
    ),
    E("webhook_body_too_large", 413, "The webhook body is over its size limit.", "http"),
    E("run_finished", 409, "The agent run has already finished; nothing to cancel.", "http"),
    E(
        "invalid_trigger",
        400,
        "The agent's trigger (cron, time zone or interval) is invalid.",
        "http",
    ),
    E(
        "invalid_unattended_rule",
        400,
        "An unattended rule cannot be checked by the policy.",
        "http",
    ),
    E("unknown_node", 400, "A node id is unknown or not one you may use.", "http"),
)


def render_markdown() -> str:
    """`docs/errors.md`: the catalogue as a page for people."""
    lines = [
        "# Error codes",
        "",
        "<!-- Generated from cortex/error_codes.py: "
        "python -m cortex.error_codes > docs/errors.md -->",
        "",
        "Every error body has one shape, "
        '`{"error": {"code": "<code>", "message": "<text>", "fields"?: {...}}}`; the `code` is',
        "stable (codes are added, never renamed). WebSocket `error` frames carry the same object,",
        "and gRPC calls carry the code in the trailing metadata key `cortex-error-code`.",
        "`where`: http (REST), ws (WebSocket frames), grpc (the node stream), node (reported by",
        "a node's files action and answered through `files_failed`'s status). A status of `-`",
        "means the code never comes back over HTTP.",
        "",
        "| code | HTTP status | where | meaning |",
        "| --- | --- | --- | --- |",
    ]
    for entry in CATALOGUE.values():
        status = str(entry.status) if entry.status is not None else "-"
        lines.append(f"| `{entry.code}` | {status} | {entry.where} | {entry.meaning} |")
    return "\n".join(lines) + "\n"


def openapi_extension() -> list[dict[str, object]]:
    """The catalogue as the schema's `x-error-codes` list."""
    return [
        {"code": e.code, "status": e.status, "where": e.where, "meaning": e.meaning}
        for e in CATALOGUE.values()
    ]


if __name__ == "__main__":
    print(render_markdown(), end="")  # noqa: T201  # the docs generator writes to stdout
