"""REST viewsets of the mesh app: nodes (admin and user views), grants, tasks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.selectors import user_is_admin, user_signed_in
from cortex.api import longpoll
from cortex.api.schema import error_response
from cortex.api.viewsets import CortexViewSet, IsStaff, IsStaffOr404
from mesh import selectors, services
from mesh.api.serializers import (
    InviteOutput,
    NodeAccessInput,
    NodeAdminOutput,
    NodeCreatedOutput,
    NodeCreateInput,
    NodeFilePushInput,
    NodeGroupAccessOutput,
    NodeUpdateInput,
    NodeUserOutput,
    RotationOutput,
    TaskCancelInput,
    TaskCreateInput,
    TaskDetailOutput,
    TaskListQuery,
    TaskOutputPageOutput,
    TaskOutputQuery,
    TaskSummaryOutput,
    TaskWaitQuery,
)

UUID_REGEX = r"[0-9a-fA-F-]{32,36}"


def _is_staff(request: Request) -> bool:
    return user_is_admin(request.user)


class NodeViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, CortexViewSet
):
    """Nodes: admins manage every node; users see the nodes granted to their groups."""

    lookup_field = "node_id"
    lookup_value_regex = r"[a-z0-9][a-z0-9_-]{0,62}"
    selector = staticmethod(selectors.node_list_for_user)
    input_serializers = {
        "create": NodeCreateInput,
        "partial_update": NodeUpdateInput,
        "access": NodeAccessInput,
        "tasks": TaskCreateInput,
        "files": NodeFilePushInput,
    }
    output_serializer = NodeUserOutput
    output_serializers = {
        "tasks": TaskSummaryOutput,
        "files": TaskSummaryOutput,
        "access": NodeGroupAccessOutput,
    }
    created_actions = frozenset({"create", "tasks", "access", "invite"})
    admin_actions = frozenset(
        {"create", "partial_update", "destroy", "access", "access_revoke", "invite", "rotate"}
    )

    def get_permissions(self) -> Sequence[Any]:
        if self.action == "create":
            return [IsStaff()]
        if self.action in self.admin_actions:
            return [IsStaffOr404()]  # a node the caller cannot see: 404, not 403
        return super().get_permissions()

    def output_serializer_class(self) -> type[serializers.BaseSerializer] | None:
        if self.action in ("list", "retrieve", "partial_update") and _is_staff(self.request):
            return NodeAdminOutput
        return super().output_serializer_class()

    def get_queryset(self) -> Any:
        # Grants and invites are loaded only for the actions that show them to admins.
        details = self.action in ("retrieve", "partial_update")
        return selectors.node_list_for_user(user=self.request.user, admin_details=details)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.render_page(selectors.node_page_source_for_user(user=request.user))

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.render(self.get_object_or_404())

    @extend_schema(request=NodeCreateInput, responses={201: NodeCreatedOutput})
    def create(self, request: Request) -> Response:
        node, token = services.node_create(
            actor=user_signed_in(user=request.user),
            audit_context=self.audit_context,
            **self.validated_input(request),
        )
        node.invite_token = token  # type: ignore[attr-defined]  # shown here once, never stored
        return self.render(node, status_code=201, serializer_class=NodeCreatedOutput)

    @extend_schema(request=NodeUpdateInput, responses={200: NodeAdminOutput})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        node = self.get_object_or_404()
        data = self.validated_input(request, partial=True)
        services.node_update(
            actor=user_signed_in(user=request.user),
            node=node,
            data=data,
            audit_context=self.audit_context,
        )
        return self.render(selectors.node_get_for_user(user=request.user, node_id=node.node_id))

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.node_delete(
            actor=user_signed_in(user=request.user),
            node=self.get_object_or_404(),
            audit_context=self.audit_context,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=NodeAccessInput, responses={201: NodeGroupAccessOutput})
    @action(detail=True, methods=["post"], url_path="access")
    def access(self, request: Request, node_id: str) -> Response:
        node = self.get_object_or_404()
        group = selectors.group_for_grant(group_id=self.validated_input(request)["group"])
        access = services.node_grant(
            actor=user_signed_in(user=request.user),
            node=node,
            group=group,
            audit_context=self.audit_context,
        )
        return self.render(access, status_code=201)

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["delete"], url_path=r"access/(?P<group_id>[0-9]+)")
    def access_revoke(self, request: Request, node_id: str, group_id: str) -> Response:
        node = self.get_object_or_404()
        group = selectors.group_for_grant(group_id=int(group_id))
        services.node_revoke(
            actor=user_signed_in(user=request.user),
            node=node,
            group=group,
            audit_context=self.audit_context,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={201: InviteOutput})
    @action(detail=True, methods=["post"], url_path="invite")
    def invite(self, request: Request, node_id: str) -> Response:
        """A new invite (older unused ones stop working); the token is shown once."""
        node = self.get_object_or_404()
        token = services.invite_issue(
            actor=user_signed_in(user=request.user),
            node=node,
            audit_context=self.audit_context,
        )
        return self.render(
            {"node_id": node.node_id, "invite_token": token},
            status_code=201,
            serializer_class=InviteOutput,
        )

    @extend_schema(request=None, responses={202: RotationOutput})
    @action(detail=True, methods=["post"], url_path="rotate-credential")
    def rotate(self, request: Request, node_id: str) -> Response:
        """Ask the node's stream holder to push a new credential (old one valid until acked)."""
        node = self.get_object_or_404()
        services.credential_rotate(
            actor=user_signed_in(user=request.user),
            node=node,
            audit_context=self.audit_context,
        )
        return self.render(
            {"node_id": node.node_id, "status": "requested"},
            status_code=status.HTTP_202_ACCEPTED,
            serializer_class=RotationOutput,
        )

    @extend_schema(
        methods=["POST"],
        description=(
            "Queue a shell command. A command the node's policy marks sensitive needs "
            '`"confirm": true` (else 409 `confirmation_required`, naming the command). The task '
            "must reach the node within `delivery_timeout` seconds (default "
            "CORTEX_TASK_DELIVERY_TIMEOUT): past that it ends `timed_out` with error_code "
            "`not_delivered` and never runs."
        ),
        request=TaskCreateInput,
        responses={
            201: TaskSummaryOutput,
            403: error_response("`command_not_allowed`: the node's sandbox policy refuses it."),
            409: error_response(
                "`confirmation_required` (a sensitive command without confirm), "
                "`node_inactive`, `skill_disabled` or `capability_missing`."
            ),
        },
    )
    @extend_schema(
        methods=["GET"],
        request=None,
        parameters=[TaskListQuery],
        responses={200: TaskSummaryOutput(many=True)},
    )
    @action(detail=True, methods=["get", "post"], url_path="tasks")
    def tasks(self, request: Request, node_id: str) -> Response:
        node = self.get_object_or_404()
        if request.method == "GET":
            query = self.validated_query(TaskListQuery, request)
            return self.render_page(
                selectors.task_list_for_node(
                    user=request.user, node=node, statuses=query.get("status") or None
                )
            )
        data = self.validated_input(request)
        payload: dict[str, Any] = {"command": data["command"]}
        for key in ("cwd", "env"):
            if key in data:
                payload[key] = data[key]
        task = services.task_dispatch(
            actor=user_signed_in(user=request.user),
            node=node,
            kind="shell",
            payload=payload,
            timeout=data["timeout"],
            idempotency_key=data.get("idempotency_key", ""),
            audit_context=self.audit_context,
            confirmed=data["confirm"],
            delivery_timeout=data.get("delivery_timeout"),
        )
        return self.render(task, status_code=201)

    @extend_schema(
        description=(
            "Multipart `path` and `file` (and `timeout`, default 600 s): the file is staged on "
            "the hub and streamed to the node, which writes it into its workspace atomically "
            "after checking size and sha256. Answers 202 with the queued `files` task; wait on "
            "`GET /api/v1/tasks/{id}/?wait=`."
        ),
        request={"multipart/form-data": NodeFilePushInput},
        responses={
            202: TaskSummaryOutput,
            400: error_response("Bad input (`invalid_input`: no `file` or no `path`)."),
            404: error_response("Not a node you may use (`not_found`)."),
            409: error_response("`node_inactive`, `skill_disabled` or `capability_missing`."),
            413: error_response("`file_too_large`: past CORTEX_FILE_PUSH_MAX_BYTES."),
        },
    )
    @action(detail=True, methods=["post"], url_path="files", parser_classes=[MultiPartParser])
    def files(self, request: Request, node_id: str) -> Response:
        node = self.get_object_or_404()
        services.file_push_check_length(content_length=int(request.META.get("CONTENT_LENGTH") or 0))
        data = self.validated_input(request)
        upload = data["file"]
        task = services.file_push(
            actor=user_signed_in(user=request.user),
            node=node,
            path=data["path"],
            source=upload,
            size=upload.size,
            timeout=data["timeout"],
            audit_context=self.audit_context,
        )
        return self.render(task, status_code=status.HTTP_202_ACCEPTED)


class TaskViewSet(mixins.RetrieveModelMixin, CortexViewSet):
    """Tasks on nodes the caller may use: read (optionally waiting), output, cancel."""

    lookup_value_regex = UUID_REGEX
    selector = staticmethod(selectors.task_list_for_user)
    input_serializers = {"cancel": TaskCancelInput}
    output_serializer = TaskDetailOutput
    output_serializers = {"output": TaskOutputPageOutput, "cancel": TaskSummaryOutput}
    created_actions = frozenset()

    @extend_schema(
        parameters=[OpenApiParameter("wait", float, description="seconds, max 60")],
        responses={
            200: TaskDetailOutput,
            429: error_response(
                "`too_many_waits`: past CORTEX_LONGPOLL_PER_USER or CORTEX_LONGPOLL_PER_PROCESS "
                "waits at once (Retry-After says when to try again)."
            ),
        },
    )
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        task = self.get_object_or_404()
        wait = self.validated_query(TaskWaitQuery, request)["wait"]
        if wait > 0 and not task.is_terminal:
            user_id = request.user.pk
            if longpoll.defer(request, user_id=user_id, key=task.pk, timeout=wait):
                return self.render(task)  # `long_poll` (mesh/api/urls.py) waits off-thread
            with longpoll.slot(user_id=user_id):
                task = services.task_wait(task=task, timeout=wait)
        return self.render(task)

    @extend_schema(parameters=[OpenApiParameter("after_seq", int), OpenApiParameter("limit", int)])
    @action(detail=True, methods=["get"], url_path="output")
    def output(self, request: Request, pk: str) -> Response:
        task = self.get_object_or_404()
        query = self.validated_query(TaskOutputQuery, request)
        chunks = selectors.task_output(
            task=task, after_seq=query["after_seq"], limit=query["limit"]
        )
        return self.render({"task": task, "chunks": chunks})

    @extend_schema(
        responses={
            (200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY, description="PNG."),
            404: error_response("No such task, or it has no screenshot (`screenshot_missing`)."),
        }
    )
    @action(detail=True, methods=["get"], url_path="screenshot")
    def screenshot(self, request: Request, pk: str) -> FileResponse:
        """The screenshot a browser task took (stored on the hub with the task)."""
        handle = services.browser_screenshot_open(task=self.get_object_or_404())
        response = FileResponse(handle, content_type="image/png")
        response["Cache-Control"] = "private, no-store"
        response["X-Content-Type-Options"] = "nosniff"
        return response

    @extend_schema(request=TaskCancelInput, responses={200: TaskSummaryOutput})
    @action(detail=True, methods=["post"], url_path="cancel")
    def cancel(self, request: Request, pk: str) -> Response:
        task = self.get_object_or_404()
        reason = self.validated_input(request)["reason"]
        task = services.task_cancel(
            actor=user_signed_in(user=request.user),
            task=task,
            reason=reason,
            audit_context=self.audit_context,
        )
        return self.render(task)
