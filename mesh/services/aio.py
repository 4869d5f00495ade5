"""Async entry points for the gRPC process: each runs one sync service as a unit of DB work."""

from __future__ import annotations

from mesh.selectors import terminals as terminal_selectors
from mesh.services import credentials, invites, journal, output, presence, refusals, terminals
from mesh.services._common import db_unit

invite_exchange = db_unit(invites.invite_exchange)
credential_authenticate = db_unit(credentials.credential_authenticate)
credential_mint_rotation = db_unit(credentials.credential_mint_rotation)
credential_confirm = db_unit(credentials.credential_confirm)
credential_refusal_record = db_unit(refusals.credential_refusal_record)
node_hello = db_unit(presence.node_hello)
node_policy = db_unit(presence.node_policy)
node_holds_stream = db_unit(presence.node_holds_stream)
node_disconnected = db_unit(presence.node_disconnected)
heartbeat_flush = db_unit(presence.heartbeat_flush)
presence_sweep = db_unit(presence.presence_sweep)
task_started = db_unit(journal.task_started)
task_finish = db_unit(journal.task_finish)
tasks_claim_for_delivery = db_unit(journal.tasks_claim_for_delivery)
tasks_pending_cancel = db_unit(journal.tasks_pending_cancel)
nodes_with_queued_tasks = db_unit(journal.nodes_with_queued_tasks)
output_append = db_unit(output.output_append)
output_append_many = db_unit(output.output_append_many)
output_store_batch = db_unit(output.output_store_batch)
terminal_opened = db_unit(terminals.terminal_opened)
terminal_output_store = db_unit(terminals.terminal_output_store)
terminal_exited = db_unit(terminals.terminal_exited)
terminals_pending = db_unit(terminal_selectors.terminals_pending)
terminals_ended_among = db_unit(terminal_selectors.terminals_ended_among)
terminals_reconcile = db_unit(terminals.terminals_reconcile)
