"""Write services of the mesh app (the only code that changes mesh state)."""

from mesh.services.browser import (
    browser_screenshot_open,
    browser_screenshots_delete,
    browser_screenshots_sweep,
    browser_session_close,
)
from mesh.services.credentials import (
    credential_authenticate,
    credential_confirm,
    credential_mint_rotation,
    credential_rotate,
)
from mesh.services.file_push import FilePushTooLarge, file_push, file_push_check_length
from mesh.services.grants import node_grant, node_revoke
from mesh.services.invites import InviteInvalid, invite_exchange, invite_issue
from mesh.services.journal import (
    task_expire_undelivered,
    task_finish,
    task_started,
    tasks_claim_for_delivery,
    tasks_enforce_deadlines,
    tasks_expire_undelivered,
    tasks_mark_lost,
    tasks_pending_cancel,
)
from mesh.services.nodes import node_create, node_deactivate, node_delete, node_update
from mesh.services.output import output_append
from mesh.services.presence import (
    HeldTask,
    WelcomeData,
    heartbeat_flush,
    node_disconnected,
    node_hello,
    presence_sweep,
)
from mesh.services.stats import stats_clean, stats_sample_record, stats_samples_record_many
from mesh.services.tasks import (
    CapabilityMissing,
    CommandNotAllowed,
    ConfirmationRequired,
    IdempotencyConflict,
    NodeInactive,
    SkillDisabled,
    task_cancel,
    task_dispatch,
    task_wait,
    task_wait_async,
)

__all__ = [
    "browser_screenshot_open",
    "browser_screenshots_delete",
    "browser_screenshots_sweep",
    "browser_session_close",
    "CapabilityMissing",
    "CommandNotAllowed",
    "ConfirmationRequired",
    "IdempotencyConflict",
    "FilePushTooLarge",
    "HeldTask",
    "InviteInvalid",
    "NodeInactive",
    "SkillDisabled",
    "WelcomeData",
    "credential_authenticate",
    "credential_confirm",
    "credential_mint_rotation",
    "credential_rotate",
    "file_push",
    "file_push_check_length",
    "heartbeat_flush",
    "stats_clean",
    "invite_exchange",
    "invite_issue",
    "node_create",
    "node_deactivate",
    "node_delete",
    "node_disconnected",
    "node_grant",
    "node_hello",
    "node_revoke",
    "node_update",
    "output_append",
    "presence_sweep",
    "stats_sample_record",
    "stats_samples_record_many",
    "task_cancel",
    "task_dispatch",
    "task_expire_undelivered",
    "task_finish",
    "task_started",
    "task_wait",
    "task_wait_async",
    "tasks_claim_for_delivery",
    "tasks_enforce_deadlines",
    "tasks_expire_undelivered",
    "tasks_mark_lost",
    "tasks_pending_cancel",
]
