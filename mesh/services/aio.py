"""Async entry points for the gRPC process: each runs one sync service as a unit of DB work."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from cortex.services import db_unit as cortex_db_unit
from mesh import events
from mesh.selectors import terminals as terminal_selectors
from mesh.services import (
    credentials,
    invites,
    journal,
    output,
    presence,
    refusals,
    terminal_keys,
    terminals,
)

P = ParamSpec("P")
R = TypeVar("R")


def _db_unit(fn: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`cortex.services.db_unit` plus the one thing the mesh adds: live frames the unit queues
    after commit are sent by the loop when it returns (`events.collect_frames`), not by the DB
    thread, so a node gets its ack while Redis is still being told."""
    return cortex_db_unit(fn, around=events.collect_frames)


invite_exchange = _db_unit(invites.invite_exchange)
credential_authenticate = _db_unit(credentials.credential_authenticate)
credential_mint_rotation = _db_unit(credentials.credential_mint_rotation)
credential_confirm = _db_unit(credentials.credential_confirm)
credential_refusal_record = _db_unit(refusals.credential_refusal_record)
node_hello = _db_unit(presence.node_hello)
node_policy = _db_unit(presence.node_policy)
node_holds_stream = _db_unit(presence.node_holds_stream)
node_disconnected = _db_unit(presence.node_disconnected)
heartbeat_flush = _db_unit(presence.heartbeat_flush)
presence_sweep = _db_unit(presence.presence_sweep)
task_started = _db_unit(journal.task_started)
task_finish = _db_unit(journal.task_finish)
tasks_claim_for_delivery = _db_unit(journal.tasks_claim_for_delivery)
tasks_pending_cancel = _db_unit(journal.tasks_pending_cancel)
nodes_with_queued_tasks = _db_unit(journal.nodes_with_queued_tasks)
output_append = _db_unit(output.output_append)
output_append_many = _db_unit(output.output_append_many)
output_store_batch = _db_unit(output.output_store_batch)
terminal_opened = _db_unit(terminals.terminal_opened)
terminal_output_store = _db_unit(terminals.terminal_output_store)
terminal_exited = _db_unit(terminals.terminal_exited)
terminals_pending = _db_unit(terminal_selectors.terminals_pending)
terminals_ended_among = _db_unit(terminal_selectors.terminals_ended_among)
terminals_reconcile = _db_unit(terminals.terminals_reconcile)
terminal_inputs_to_send = _db_unit(terminal_keys.terminal_inputs_to_send)
terminal_inputs_sent = _db_unit(terminal_keys.terminal_inputs_sent)
