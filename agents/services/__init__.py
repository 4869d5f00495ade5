"""Write services of the agents app (split by subdomain, re-exported here)."""

from agents.services.agents import (
    InvalidUnattendedRule,
    UnknownNode,
    agent_create,
    agent_delete,
    agent_rotate_secret,
    agent_set_paused,
    agent_update,
)
from agents.services.cancel import RunFinished, run_cancel
from agents.services.runs import (
    AgentPaused,
    InvalidSignature,
    ReplayedDelivery,
    RunTooSoon,
    StaleSignature,
    run_now,
    runs_claim,
    runs_reap_lost,
    signature_of,
    ticks_fire,
    webhook_deliveries_sweep,
    webhook_trigger,
)
from agents.services.timing import InvalidTrigger

__all__ = [
    "AgentPaused",
    "InvalidSignature",
    "InvalidTrigger",
    "InvalidUnattendedRule",
    "ReplayedDelivery",
    "RunFinished",
    "RunTooSoon",
    "StaleSignature",
    "UnknownNode",
    "agent_create",
    "agent_delete",
    "agent_rotate_secret",
    "agent_set_paused",
    "agent_update",
    "run_cancel",
    "run_now",
    "runs_claim",
    "runs_reap_lost",
    "signature_of",
    "ticks_fire",
    "webhook_deliveries_sweep",
    "webhook_trigger",
]
