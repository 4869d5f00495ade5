"""`manage.py grant_node NODE_ID GROUP`: let a group use a node (audited, source "command")."""

from __future__ import annotations

from mesh import services
from mesh.management.commands._node_access import NodeAccessCommand


class Command(NodeAccessCommand):
    help = "Let members of GROUP (name or id) use NODE_ID."
    change = staticmethod(services.node_grant)
    done = "Group {group} may use node {node}."
    command_name = "grant_node"
