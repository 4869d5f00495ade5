"""Models of the agents app, one module per aggregate."""

from agents.models.agents import Agent, CatchUp, TriggerKind
from agents.models.deliveries import WebhookDelivery
from agents.models.runs import AgentRun, RunStatus, RunTrigger

__all__ = [
    "Agent",
    "AgentRun",
    "CatchUp",
    "RunStatus",
    "RunTrigger",
    "TriggerKind",
    "WebhookDelivery",
]
