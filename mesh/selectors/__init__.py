"""Read-side queries of the mesh app; grant-aware ones return only what `user` may see.

- `access`: the node rule (`node_usable_for`, `nodes_usable_by`) and the node lists built on it;
- `nodes`: reads about one node (`node_skill_refusal`, invites, agent, policy verdicts);
- `tasks`: tasks and their stored output;
- `live`: what the live consoles show (snapshots, replays, the stats history);
- `metrics`: fleet-wide counts for the metrics scrape.
"""

from mesh.selectors.access import (
    NODE_USER_FIELDS,
    VisibleNodes,
    node_get_for_user,
    node_list_for_user,
    node_page_source_for_user,
    node_usable_for,
    node_user_ids,
    node_user_ids_many,
    nodes_usable_by,
)
from mesh.selectors.live import (
    REPLAY_LIMIT,
    chunk_frame,
    node_card,
    node_snapshot,
    node_visible,
    nodes_snapshot,
    output_gap,
    output_replay,
    stats_history,
    task_card,
    user_fresh,
)
from mesh.selectors.metrics import node_counts_by_status, task_counts_by_status_kind
from mesh.selectors.nodes import (
    CAPABILITY_MISSING,
    NODE_INACTIVE,
    SKILL_DISABLED,
    group_for_grant,
    invite_state,
    node_agent_info,
    node_find,
    node_skill_refusal,
    node_skills_available,
    policy_check,
)
from mesh.selectors.tasks import (
    dropped_marker,
    task_get_for_user,
    task_list_for_node,
    task_list_for_user,
    task_output,
    task_text,
)

__all__ = [
    "node_counts_by_status",
    "task_counts_by_status_kind",
    "CAPABILITY_MISSING",
    "NODE_INACTIVE",
    "NODE_USER_FIELDS",
    "REPLAY_LIMIT",
    "SKILL_DISABLED",
    "VisibleNodes",
    "chunk_frame",
    "dropped_marker",
    "group_for_grant",
    "invite_state",
    "node_agent_info",
    "node_card",
    "node_find",
    "node_get_for_user",
    "node_list_for_user",
    "node_page_source_for_user",
    "node_skill_refusal",
    "node_skills_available",
    "node_snapshot",
    "node_usable_for",
    "node_user_ids",
    "node_user_ids_many",
    "node_visible",
    "nodes_snapshot",
    "nodes_usable_by",
    "output_gap",
    "output_replay",
    "policy_check",
    "stats_history",
    "task_card",
    "task_get_for_user",
    "task_list_for_node",
    "task_list_for_user",
    "task_output",
    "task_text",
    "user_fresh",
]
