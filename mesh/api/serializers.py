"""Input and output serializers of the mesh API (one per direction and endpoint)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from mesh import selectors
from mesh.models import Node, Task

NODE_ID_REGEX = r"^[a-z0-9][a-z0-9_-]{0,62}$"
ENV_VALUE_MASK = "********"


# --- nodes -----------------------------------------------------------------------------------


class NodeCreateInput(serializers.Serializer):
    node_id = serializers.RegexField(NODE_ID_REGEX, max_length=63)
    display_name = serializers.CharField(max_length=150)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    skill_config = serializers.DictField(required=False, allow_null=True, default=None)


class NodeUpdateInput(serializers.Serializer):
    display_name = serializers.CharField(max_length=150, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    skill_config = serializers.DictField(required=False)
    sandbox_policy = serializers.DictField(
        required=False,
        help_text=(
            "`mode` (`strict`: the security boundary, only `allowed_commands` and syntax the "
            "checker understands, redirections inside the workspace; `permissive`: a guard rail, "
            "not a boundary), `allowed_commands`, `denied_commands`, `sensitive_commands`, "
            "`allow_terminals` (interactive terminals; absent: yes in permissive mode, no in "
            "strict mode), and `browser`: `{allowed_domains, denied_domains, "
            "allow_private_networks, allow_evaluate, allow_downloads}` (host names, `*.suffix`, "
            "IPs or CIDRs; private and loopback addresses only when an IP/CIDR entry or "
            "`allow_private_networks` allows them). See the README's security section."
        ),
    )
    is_active = serializers.BooleanField(required=False)


class NodeAccessInput(serializers.Serializer):
    group = serializers.IntegerField(min_value=1)


class NodeUserOutput(serializers.Serializer):
    """What a user with a grant sees: no secrets, no admin fields."""

    node_id = serializers.CharField(read_only=True)
    display_name = serializers.CharField(read_only=True)
    description = serializers.CharField(read_only=True)
    capabilities = serializers.DictField(read_only=True)
    version = serializers.CharField(read_only=True)
    status = serializers.CharField(read_only=True)
    offline_reason = serializers.CharField(read_only=True)
    last_seen_at = serializers.DateTimeField(read_only=True, allow_null=True)
    stats = serializers.DictField(read_only=True)
    is_active = serializers.BooleanField(read_only=True)
    available_skills = serializers.SerializerMethodField()

    def get_available_skills(self, node: Node) -> list[str]:
        return selectors.node_skills_available(node=node)

    def to_representation(self, node: Node) -> dict[str, Any]:
        """The declared fields, read directly: the node list renders up to 200 of these per
        page, and DRF's per-field walk costs more than the query (a test keeps both equal)."""
        if type(self) is not NodeUserOutput:
            return super().to_representation(node)
        last_seen = node.last_seen_at
        return {
            "node_id": node.node_id,
            "display_name": node.display_name,
            "description": node.description,
            "capabilities": dict(node.capabilities or {}),
            "version": node.version,
            "status": node.status,
            "offline_reason": node.offline_reason,
            "last_seen_at": None
            if last_seen is None
            else self.fields["last_seen_at"].to_representation(last_seen),
            "stats": dict(node.stats or {}),
            "is_active": node.is_active,
            "available_skills": self.get_available_skills(node),
        }


class NodeGroupAccessOutput(serializers.Serializer):
    group = serializers.IntegerField(source="group_id", read_only=True)
    name = serializers.CharField(source="group.name", read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


class InviteStateOutput(serializers.Serializer):
    state = serializers.CharField(read_only=True)
    expires_at = serializers.DateTimeField(read_only=True, allow_null=True)
    used_at = serializers.DateTimeField(read_only=True, allow_null=True)


class NodeAdminOutput(NodeUserOutput):
    """Admin detail: skills, policy, grants and invite state (never a token)."""

    skill_config = serializers.DictField(read_only=True)
    sandbox_policy = serializers.DictField(read_only=True)
    platform = serializers.CharField(read_only=True)
    hostname = serializers.CharField(read_only=True)
    created_by = serializers.IntegerField(source="created_by_id", read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
    group_access = NodeGroupAccessOutput(many=True, read_only=True)
    invite = serializers.SerializerMethodField()
    agent = serializers.SerializerMethodField()

    def get_agent(self, node: Node) -> dict[str, str]:
        """What the agent said in its last Hello (empty strings before the first one)."""
        return selectors.node_agent_info(node=node)

    def get_invite(self, node: Node) -> dict[str, Any]:
        return InviteStateOutput(selectors.invite_state(node=node)).data


class NodeCreatedOutput(NodeAdminOutput):
    """The create response: the one and only time the invite token is shown."""

    invite_token = serializers.CharField(read_only=True)


class InviteOutput(serializers.Serializer):
    node_id = serializers.CharField(read_only=True)
    invite_token = serializers.CharField(read_only=True)


class RotationOutput(serializers.Serializer):
    node_id = serializers.CharField(read_only=True)
    status = serializers.CharField(read_only=True)


# --- tasks -----------------------------------------------------------------------------------


class TaskCreateInput(serializers.Serializer):
    command = serializers.CharField(max_length=16384, trim_whitespace=False)
    timeout = serializers.FloatField(min_value=0.1, max_value=86400, default=30.0)
    cwd = serializers.CharField(required=False, allow_blank=True, max_length=4096)
    env = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)
    idempotency_key = serializers.CharField(required=False, allow_blank=True, max_length=128)
    confirm = serializers.BooleanField(
        default=False,
        help_text="Required (true) for a command the node's policy marks sensitive.",
    )
    delivery_timeout = serializers.FloatField(
        min_value=1,
        max_value=86400,
        required=False,
        help_text=(
            "Seconds the task may wait for its node (default CORTEX_TASK_DELIVERY_TIMEOUT); "
            "past them it ends timed_out with error_code not_delivered and never runs."
        ),
    )


class NodeFilePushInput(serializers.Serializer):
    """Multipart: the file and where it goes in the node's workspace."""

    path = serializers.CharField(max_length=4096, help_text="Target path in the workspace.")
    file = serializers.FileField(allow_empty_file=True, use_url=False)
    timeout = serializers.FloatField(min_value=0.1, max_value=86400, default=600.0)


class TaskWaitQuery(serializers.Serializer):
    wait = serializers.FloatField(min_value=0, max_value=60, default=0)


class TaskOutputQuery(serializers.Serializer):
    after_seq = serializers.IntegerField(min_value=0, default=0)
    limit = serializers.IntegerField(min_value=1, max_value=5000, default=1000)


class TaskCancelInput(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=255, default="")


class TaskSummaryOutput(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    node_id = serializers.CharField(source="node.node_id", read_only=True)
    kind = serializers.CharField(read_only=True)
    command = serializers.SerializerMethodField()
    payload = serializers.SerializerMethodField(
        help_text="What the task does; `env` values are shown to the requester only."
    )
    status = serializers.CharField(read_only=True)
    exit_code = serializers.IntegerField(read_only=True, allow_null=True)
    error_code = serializers.CharField(read_only=True)
    error_message = serializers.CharField(read_only=True)
    timeout = serializers.FloatField(read_only=True)
    requested_by = serializers.IntegerField(
        source="requested_by_id", read_only=True, allow_null=True
    )
    chat_session_id = serializers.IntegerField(read_only=True, allow_null=True)
    tool_call_id = serializers.CharField(read_only=True)
    cancel_requested = serializers.SerializerMethodField()
    last_seq = serializers.IntegerField(read_only=True)
    output_bytes = serializers.IntegerField(read_only=True)
    dropped_bytes = serializers.IntegerField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    deliver_by = serializers.DateTimeField(read_only=True)
    dispatched_at = serializers.DateTimeField(read_only=True, allow_null=True)
    started_at = serializers.DateTimeField(read_only=True, allow_null=True)
    finished_at = serializers.DateTimeField(read_only=True, allow_null=True)

    def get_command(self, task: Task) -> str:
        return str((task.payload or {}).get("command", ""))

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_payload(self, task: Task) -> dict[str, Any]:
        # `env` often carries credentials: other members of the node's groups (admins too)
        # see which names were set, never their values.
        payload = dict(task.payload or {})
        env = payload.get("env")
        request = self.context.get("request")
        viewer = getattr(getattr(request, "user", None), "pk", None)
        if isinstance(env, dict) and (viewer is None or viewer != task.requested_by_id):
            payload["env"] = dict.fromkeys(env, ENV_VALUE_MASK)
        return payload

    def get_cancel_requested(self, task: Task) -> bool:
        return task.cancel_requested_at is not None


class TaskDetailOutput(TaskSummaryOutput):
    """A task with its decoded output (from `selectors.task_text`, passed in the context)."""

    result = serializers.JSONField(read_only=True, allow_null=True)
    stdout = serializers.SerializerMethodField()
    stderr = serializers.SerializerMethodField()

    def _text(self, task: Task) -> tuple[str, str]:
        text = self.context.get("text")
        if text is None:
            text = selectors.task_text(task=task)
            self.context["text"] = text  # type: ignore[index]  # a dict (the stubs: Mapping)
        return text

    def get_stdout(self, task: Task) -> str:
        return self._text(task)[0]

    def get_stderr(self, task: Task) -> str:
        return self._text(task)[1]


class TaskChunkOutput(serializers.Serializer):
    seq = serializers.IntegerField(read_only=True)
    stream = serializers.CharField(read_only=True)
    # The API field `data` (DRF reads declared fields; the stubs see Serializer.data).
    data = serializers.SerializerMethodField()  # type: ignore[assignment]

    def get_data(self, chunk: Any) -> str:
        return bytes(chunk.data).decode("utf-8", "replace")


class TaskOutputPageOutput(serializers.Serializer):
    task_id = serializers.UUIDField(source="task.id", read_only=True)
    status = serializers.CharField(source="task.status", read_only=True)
    last_seq = serializers.IntegerField(source="task.last_seq", read_only=True)
    dropped_bytes = serializers.IntegerField(source="task.dropped_bytes", read_only=True)
    chunks = TaskChunkOutput(many=True, read_only=True)


class TaskListQuery(serializers.Serializer):
    status = serializers.CharField(
        required=False,
        max_length=200,
        help_text="Comma-separated task statuses, e.g. failed,timed_out.",
    )

    def validate_status(self, value: str) -> list[str]:
        from mesh.models.tasks import TaskStatus

        values = [v.strip() for v in value.split(",") if v.strip()]
        unknown = [v for v in values if v not in TaskStatus.values]
        if unknown:
            raise serializers.ValidationError(
                f"Unknown status {unknown[0]!r}; use {', '.join(TaskStatus.values)}."
            )
        return values
