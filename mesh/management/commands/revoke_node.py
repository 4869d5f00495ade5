"""`manage.py revoke_node NODE_ID GROUP`: stop a group from using a node (audited)."""

from __future__ import annotations

from mesh import services
from mesh.management.commands._node_access import NodeAccessCommand


class Command(NodeAccessCommand):
    help = "Stop members of GROUP (name or id) from using NODE_ID."
    change = staticmethod(services.node_revoke)
    done = "Group {group} may no longer use node {node}."
    command_name = "revoke_node"
