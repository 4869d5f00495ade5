"""Models of the mesh app, one module per aggregate."""

from mesh.models.install_links import InstallLinkStage, NodeInstallLink
from mesh.models.nodes import (
    CredentialState,
    Node,
    NodeCredential,
    NodeGroupAccess,
    NodeInvite,
    NodeStatus,
    default_sandbox_policy,
    default_skill_config,
    max_concurrent_tasks,
)
from mesh.models.refusals import RefusalCount
from mesh.models.stats import NodeStatsSample
from mesh.models.tasks import (
    ACTIVE_STATUSES,
    OPEN_STATUSES,
    TERMINAL_STATUSES,
    OutputStreamName,
    Task,
    TaskKind,
    TaskOutputChunk,
    TaskStatus,
)
from mesh.models.terminals import (
    OPEN_TERMINAL_STATUSES,
    TerminalChunk,
    TerminalInput,
    TerminalInputKind,
    TerminalSession,
    TerminalStatus,
)

__all__ = [
    "ACTIVE_STATUSES",
    "OPEN_STATUSES",
    "OPEN_TERMINAL_STATUSES",
    "TERMINAL_STATUSES",
    "CredentialState",
    "InstallLinkStage",
    "Node",
    "NodeCredential",
    "NodeGroupAccess",
    "NodeInstallLink",
    "NodeInvite",
    "NodeStatsSample",
    "NodeStatus",
    "OutputStreamName",
    "RefusalCount",
    "Task",
    "TaskKind",
    "TaskOutputChunk",
    "TaskStatus",
    "TerminalChunk",
    "TerminalInput",
    "TerminalInputKind",
    "TerminalSession",
    "TerminalStatus",
    "default_sandbox_policy",
    "default_skill_config",
    "max_concurrent_tasks",
]
