"""The tool interface: what a tool declares, the context it runs in, and what it returns.

A tool is a transport acting under the chat user's grants. It never imports models or gRPC:
everything it may do on the mesh goes through the helpers of `ToolContext`, which call
`mesh.services` and `mesh.selectors` with the chat user as the actor.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from accounts.context import TOOL_CONTEXT
from mesh.agent.skill_names import SKILLS

if TYPE_CHECKING:
    from accounts.models import User
    from mesh.models import Node, Task

Risk = Literal["read", "write", "exec", "network"]
NodeSkill = Literal["shell", "files", "browser"]  # the values of mesh.agent.skill_names.Skill
RISKS: tuple[str, ...] = ("read", "write", "exec", "network")
NODE_SKILLS: tuple[str, ...] = SKILLS


class ToolRefusal(Exception):  # noqa: N818  # a refusal, not a failure: it becomes a result
    """Raised inside a tool (or its pre-checks) to refuse the call with a stable `code`."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


@dataclass
class ToolResult:
    """What a tool call returns: text for the model, data for the UI, the tasks it started."""

    text: str
    data: dict[str, Any] = field(default_factory=dict)
    task_ids: list[str] = field(default_factory=list)
    error_code: str = ""

    @property
    def ok(self) -> bool:
        return not self.error_code

    @classmethod
    def error(cls, code: str, message: str, **data: Any) -> ToolResult:
        """A refusal or failure the model can read and react to."""
        return cls(text=f"Error ({code}): {message}", data=data, error_code=code)

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "data": self.data,
            "task_ids": list(self.task_ids),
            "error_code": self.error_code,
        }


@dataclass
class ToolContext:
    """Who calls, from which chat session, with which nodes attached (node_id -> working dir)."""

    user: User
    chat_session_id: int | None
    attached_nodes: dict[str, str]
    message_id: int | None = None
    tool_call_id: str = ""
    #: A person approved this very call: a sensitive command is dispatched confirmed.
    confirmed: bool = False

    # -- nodes --------------------------------------------------------------------------

    def working_dir(self, node_id: str) -> str:
        """The session's working directory on an attached node ("" = the agent's default)."""
        if node_id not in self.attached_nodes:
            raise ToolRefusal(
                "node_not_attached",
                f"Node '{node_id}' is not attached to this chat session.",
                node_id=node_id,
            )
        return self.attached_nodes[node_id] or ""

    def node(self, node_id: str) -> Node:
        """The attached node `node_id`, if the user may still use it; refuses otherwise."""
        from cortex.errors import NotFound
        from mesh import selectors as mesh_selectors

        self.working_dir(node_id)
        try:
            return mesh_selectors.node_get_for_user(user=self.user, node_id=node_id)
        except NotFound as exc:
            raise ToolRefusal(
                "node_not_usable",
                f"Node '{node_id}' is attached but you may no longer use it.",
                node_id=node_id,
            ) from exc

    def node_for_tool(self, node_id: str, *, tool: Tool) -> Node:
        """The node, checked for being active and for the skill and capability `tool` needs."""
        from mesh import selectors as mesh_selectors

        node = self.node(node_id)
        if tool.skill is None:
            refusal = None if node.is_active else mesh_selectors.NODE_INACTIVE
        else:  # the same check as a REST dispatch of this skill
            refusal = mesh_selectors.node_skill_refusal(node=node, skill=tool.skill)
        if refusal == mesh_selectors.NODE_INACTIVE:
            raise ToolRefusal(refusal, f"Node '{node_id}' is disabled.", node_id=node_id)
        if refusal == mesh_selectors.SKILL_DISABLED:
            raise ToolRefusal(
                refusal,
                f"The '{tool.skill}' skill is switched off on node '{node_id}'.",
                node_id=node_id,
            )
        if refusal is not None:
            raise ToolRefusal(
                refusal,
                f"Node '{node_id}' does not report the '{tool.skill}' capability.",
                node_id=node_id,
            )
        return node

    def workspace_path(self, node_id: str, path: str) -> str:
        """`path` resolved inside the node's working directory; refuses anything outside it.

        Relative paths are taken from the working directory. Absolute paths are accepted only
        when they lie inside it. The agent checks real paths again (symlinks) before acting.
        """
        root = self.working_dir(node_id)
        if "\x00" in path:
            raise ToolRefusal("path_outside_workspace", "The path contains a NUL byte.")
        root_norm = posixpath.normpath(root) if root else "."
        if root_norm != ".":
            joined = posixpath.normpath(posixpath.join(root_norm, path))
            inside = joined == root_norm or joined.startswith(root_norm.rstrip("/") + "/")
            if not inside:
                raise ToolRefusal(
                    "path_outside_workspace",
                    f"'{path}' is outside the workspace {root_norm} of node '{node_id}'.",
                    node_id=node_id,
                    path=path,
                )
            return joined
        normalised = posixpath.normpath(path)
        if posixpath.isabs(normalised) or normalised == ".." or normalised.startswith("../"):
            raise ToolRefusal(
                "path_outside_workspace",
                f"'{path}' is outside the workspace of node '{node_id}'.",
                node_id=node_id,
                path=path,
            )
        return normalised

    # -- mesh services, under the chat user's grants -----------------------------------

    def dispatch(
        self,
        *,
        node: Node,
        kind: str,
        payload: dict[str, Any],
        timeout: float,
        browser_downloads: dict[str, Any] | None = None,
    ) -> Task:
        """Queue a task on `node` for this session's tool call (audited by mesh)."""
        from mesh import services as mesh_services

        return mesh_services.task_dispatch(
            actor=self.user,
            node=node,
            kind=kind,
            payload=payload,
            timeout=timeout,
            chat_session_id=self.chat_session_id,
            tool_call_id=self.tool_call_id,
            audit_context=TOOL_CONTEXT,
            confirmed=self.confirmed,
            browser_downloads=browser_downloads,
        )

    def wait(self, *, task: Task, timeout: float) -> Task:
        """Block up to `timeout` seconds until `task` is terminal; returns it refreshed."""
        from mesh import services as mesh_services

        return mesh_services.task_wait(task=task, timeout=max(0.0, timeout))

    def task(self, task_id: str) -> Task:
        """A task of one of this session's attached nodes that the user may see."""
        from cortex.errors import NotFound
        from mesh import selectors as mesh_selectors

        try:
            task = mesh_selectors.task_get_for_user(user=self.user, task_id=task_id)
        except (NotFound, ValueError) as exc:
            raise ToolRefusal(
                "task_not_found", f"No task '{task_id}' in this session.", task_id=task_id
            ) from exc
        if task.node.node_id not in self.attached_nodes:
            raise ToolRefusal(
                "task_not_found", f"No task '{task_id}' in this session.", task_id=task_id
            )
        return task

    def task_text(self, *, task: Task) -> tuple[str, str]:
        """The task's stdout and stderr so far, decoded."""
        from mesh import selectors as mesh_selectors

        return mesh_selectors.task_text(task=task)


class Tool:
    """A capability offered to the model; subclasses set the class attributes and `run`.

    `node_arguments` name the arguments that hold node ids (a string or a list of strings);
    `path_arguments` name the arguments that hold workspace paths. `tools.services.tool_invoke`
    checks both before `run` is called, so a refused call dispatches nothing.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {},
        "additionalProperties": False,
    }
    risk: ClassVar[Risk] = "read"
    skill: ClassVar[NodeSkill | None] = None
    #: Shown in the tool list. The check itself is the skill's: a node takes a skill only when
    #: it reports that capability (`mesh.selectors.node_skill_refusal`), for every node tool.
    capability: ClassVar[str | None] = None
    node_arguments: ClassVar[tuple[str, ...]] = ()
    path_arguments: ClassVar[tuple[str, ...]] = ()

    def run(self, *args: Any, **arguments: Any) -> ToolResult:
        """Called as `run(context=ToolContext, **arguments)`; each tool names its arguments
        (the loose signature lets a subclass declare them as keyword-only parameters)."""
        raise NotImplementedError

    def check_arguments(self, arguments: dict[str, Any]) -> list[str]:
        """Problems the JSON Schema cannot say simply (kept out of it for LLM APIs' sake)."""
        return []

    def call_risk(self, arguments: dict[str, Any]) -> Risk:
        """The risk of this very call (approvals ask by it); most tools have one risk."""
        return self.risk

    def approval_reason(self, arguments: dict[str, Any]) -> str:
        """Non-empty when this call always waits for a person, whatever the session's policy."""
        return ""

    def refused_anyway(self, arguments: dict[str, Any], nodes: list[Any]) -> bool:
        """True when the call's nodes will refuse it (audited then): no person is asked first."""
        return False

    def __repr__(self) -> str:
        return f"<Tool {self.name}>"

    def node_ids(self, arguments: dict[str, Any]) -> list[str]:
        """Every node id named in `arguments`, in order, without duplicates."""
        found: list[str] = []
        for key in self.node_arguments:
            value = arguments.get(key)
            values = value if isinstance(value, list) else [value] if value else []
            for node_id in values:
                if isinstance(node_id, str) and node_id not in found:
                    found.append(node_id)
        return found

    def openai_schema(self) -> dict[str, Any]:
        """The function declaration most LLM APIs accept."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }
