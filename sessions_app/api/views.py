"""Sessions REST: thin viewset actions that call sessions_app services and selectors."""

from __future__ import annotations

from typing import Any

from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.selectors import user_signed_in
from cortex.api.schema import error_response
from cortex.api.viewsets import CortexViewSet
from cortex.api.voice import (
    PROVIDER_ERRORS,
    SpeechRateThrottle,
    TranscribeRateThrottle,
    audio_response,
)
from providers import limits
from providers.services.speech import speech_body
from providers.services.transcription import check_upload_size, upload_length_check
from sessions_app import selectors, services
from sessions_app.api import serializers as s

_AUDIO_TYPES = ("audio/wav", "audio/mpeg", "audio/ogg", "audio/webm")


class SessionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    CortexViewSet,
):
    """`/api/v1/sessions/` and its nested messages, nodes, approvals, cancel and events."""

    selector = staticmethod(selectors.session_list_for_user)
    input_serializers = {
        "create": s.SessionCreateInput,
        "partial_update": s.SessionUpdateInput,
        "messages": s.MessagePostInput,
        "nodes": s.NodeAttachInput,
        "approval_approve": s.ApprovalApproveInput,
    }
    output_serializer = s.SessionOutput
    output_serializers = {
        "messages": s.MessageOutput,
        "nodes": s.AttachmentOutput,
        "approvals": s.ApprovalOutput,
        "approval_approve": s.ApprovalOutput,
        "approval_deny": s.ApprovalOutput,
        "cancel": s.CancelOutput,
        "events": s.EventsOutput,
        "model_choices": s.ModelChoicesOutput,
    }

    def _is_form(self) -> bool:
        return self.request is not None and self.request.content_type.startswith("multipart/")

    def input_serializer_class(self) -> Any:
        if self.action == "messages" and self._is_form():
            return s.MessageFormInput
        return super().input_serializer_class()

    def get_throttles(self) -> list[Any]:
        """Spoken messages and spoken answers also count against the voice rates."""
        throttles = list(super().get_throttles())
        if self.action == "message_speech":
            throttles.append(SpeechRateThrottle())
        elif self.action == "messages" and self.request.method == "POST" and self._is_form():
            throttles.append(TranscribeRateThrottle())
        return throttles

    def _session(self) -> Any:
        return self.get_object_or_404()

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.render_page(self.get_queryset())

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.render(self._session())

    def create(self, request: Request) -> Response:
        session = services.session_create(
            actor=user_signed_in(user=request.user), **self.validated_input(request)
        )
        return self.render(session, status_code=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        session = services.session_update(
            actor=user_signed_in(user=request.user),
            session=self.get_object_or_404(),
            data=self.validated_input(request, partial=True),
        )
        return self.render(session)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.session_delete(
            actor=user_signed_in(user=request.user), session=self.get_object_or_404()
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(methods=["GET"], responses={200: s.MessageOutput(many=True)})
    @extend_schema(
        methods=["POST"],
        description=(
            "JSON `{content}`, or multipart with an `audio` recording (WAV, MP3, OGG or WebM): "
            "it is transcribed with your stt provider, kept, and its transcript becomes the "
            "message; then the turn runs as for text. Refused recordings store nothing."
        ),
        request={
            "application/json": s.MessagePostInput,
            "multipart/form-data": s.MessageFormInput,
        },
        responses={
            202: s.MessagePostOutput,
            400: error_response("Bad input, `empty_file`, `undecodable_audio` or `nothing_heard`."),
            409: error_response("`turn_in_progress` or `session_archived`."),
            413: error_response("`file_too_large` or `audio_too_long`."),
            415: error_response("`unsupported_media_type`."),
            **PROVIDER_ERRORS,
        },
    )
    @action(
        detail=True,
        methods=["get", "post"],
        url_path="messages",
        parser_classes=[JSONParser, MultiPartParser],
    )
    def messages(self, request: Request, pk: str) -> Response:
        session = self._session()
        if request.method == "GET":
            return self.render_page(selectors.message_list(session=session))
        if self._is_form():
            return self._post_form(request, session)
        user_message, assistant = services.message_post(
            actor=user_signed_in(user=request.user),
            session=session,
            **self.validated_input(request),
        )
        return self._posted(user_message, assistant)

    def _post_form(self, request: Request, session: Any) -> Response:
        upload_length_check(int(request.META.get("CONTENT_LENGTH") or 0))
        data = self.validated_input(request)
        upload = data.pop("audio", None)
        if upload is None:
            user_message, assistant = services.message_post(
                actor=user_signed_in(user=request.user), session=session, content=data["content"]
            )
            return self._posted(user_message, assistant)
        check_upload_size(upload.size or 0)
        user_message, assistant = services.message_post_audio(
            actor=user_signed_in(user=request.user),
            session=session,
            audio=upload.read(limits.max_upload_bytes() + 1),
            language=data.get("language") or "",
            phrases=data.get("phrases") or None,
            provider_name=data.get("provider_name") or "",
        )
        return self._posted(user_message, assistant)

    def _posted(self, user_message: Any, assistant: Any) -> Response:
        return self.render(
            {"user_message_id": user_message.pk, "assistant_message_id": assistant.pk},
            serializer_class=s.MessagePostOutput,
            status_code=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(
        summary="The recording of a spoken message",
        description="Served through Django's storage; `has_audio` on the message says it exists.",
        responses={
            (200, media): OpenApiResponse(OpenApiTypes.BINARY, description="The recording.")
            for media in _AUDIO_TYPES
        }
        | {
            404: error_response(
                "Not your session or message (`not_found`), or no recording (`no_audio`)."
            )
        },
    )
    @action(
        detail=True,
        methods=["get"],
        url_path=r"messages/(?P<message_id>[0-9]+)/audio",
    )
    def message_audio(self, request: Request, pk: str, message_id: str) -> FileResponse:
        handle, content_type = selectors.message_audio_open(
            session=self.get_object_or_404(), message_id=message_id
        )
        response = FileResponse(handle, content_type=content_type)
        response["Cache-Control"] = "private, no-store"
        return response

    @extend_schema(
        description=(
            "Speak an assistant message with your tts provider; query options as for "
            "/api/v1/speech/ (`stream`, `as_wav`, `provider_name`) plus `voice`."
        ),
        parameters=[s.MessageSpeechQuery],
        request=None,
        responses={
            (200, "audio/wav"): OpenApiResponse(OpenApiTypes.BINARY, description="WAV."),
            (200, "audio/L16"): OpenApiResponse(
                OpenApiTypes.BINARY, description="Streamed raw 16-bit mono PCM."
            ),
            400: error_response("Not an assistant message with text (`not_speakable`), too long."),
            404: error_response("Not your session or message."),
            **PROVIDER_ERRORS,
        },
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"messages/(?P<message_id>[0-9]+)/speech",
    )
    def message_speech(
        self, request: Request, pk: str, message_id: str
    ) -> HttpResponse | StreamingHttpResponse:
        query = self.validated_query(s.MessageSpeechQuery, request)
        message = selectors.message_get(session=self.get_object_or_404(), message_id=message_id)
        speech = services.message_speech(
            actor=user_signed_in(user=request.user),
            message=message,
            voice=query.get("voice") or "",
            provider_name=query.get("provider_name") or "",
        )
        body = speech_body(speech=speech, stream=query["stream"], as_wav=query["as_wav"])
        return audio_response(
            request, content_type=body.content_type, headers=body.headers, content=body.content
        )

    @extend_schema(methods=["GET"], responses={200: s.AttachmentOutput(many=True)})
    @extend_schema(methods=["POST"], responses={201: s.AttachmentOutput})
    @action(detail=True, methods=["get", "post"], url_path="nodes")
    def nodes(self, request: Request, pk: str) -> Response:
        session = self.get_object_or_404()
        if request.method == "GET":
            return self.render_page(selectors.attachment_list(session=session))
        attachment = services.node_attach(
            actor=user_signed_in(user=request.user),
            session=session,
            **self.validated_input(request),
        )
        return self.render(attachment, status_code=status.HTTP_201_CREATED)

    @action(detail=True, methods=["delete"], url_path=r"nodes/(?P<node_id>[-a-zA-Z0-9_.]+)")
    def node_detach(self, request: Request, pk: str, node_id: str) -> Response:
        session = self.get_object_or_404()
        attachment = selectors.attachment_get(session=session, node_id=node_id)
        services.node_detach(actor=user_signed_in(user=request.user), attachment=attachment)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={202: s.CancelOutput})
    @action(detail=True, methods=["post"], url_path="cancel")
    def cancel(self, request: Request, pk: str) -> Response:
        message = services.turn_cancel(
            actor=user_signed_in(user=request.user), session=self.get_object_or_404()
        )
        return self.render(message, status_code=status.HTTP_202_ACCEPTED)

    @extend_schema(parameters=[s.ApprovalsQuery], responses={200: s.ApprovalOutput(many=True)})
    @action(detail=True, methods=["get"], url_path="approvals")
    def approvals(self, request: Request, pk: str) -> Response:
        session = self._session()
        query = self.validated_query(s.ApprovalsQuery, request)
        return self.render_page(
            selectors.approval_list(session=session, include_decided=query["status"] == "all")
        )

    def _decide(
        self, request: Request, approval_id: str, *, approve: bool, **extra: Any
    ) -> Response:
        session = self.get_object_or_404()
        approval = selectors.approval_get(session=session, approval_id=approval_id)
        approval = services.approval_decide(
            actor=user_signed_in(user=request.user),
            approval=approval,
            approve=approve,
            audit_context=self.audit_context,
            **extra,
        )
        return self.render(approval)

    @extend_schema(
        request=s.ApprovalApproveInput,
        responses={
            200: s.ApprovalOutput,
            400: error_response("`rule_not_possible`: no standing rule may cover this call."),
            409: error_response("`approval_already_decided`."),
        },
    )
    @action(detail=True, methods=["post"], url_path=r"approvals/(?P<approval_id>[0-9]+)/approve")
    def approval_approve(self, request: Request, pk: str, approval_id: str) -> Response:
        data = self.validated_input(request)
        return self._decide(
            request,
            approval_id,
            approve=True,
            remember=data["remember"],
            patterns=data.get("patterns") or None,
        )

    @extend_schema(request=None)
    @action(detail=True, methods=["post"], url_path=r"approvals/(?P<approval_id>[0-9]+)/deny")
    def approval_deny(self, request: Request, pk: str, approval_id: str) -> Response:
        return self._decide(request, approval_id, approve=False)

    @extend_schema(summary="What the chat's model picker may offer")
    @action(detail=True, methods=["get"], url_path="model-choices")
    def model_choices(self, request: Request, pk: str) -> Response:
        session = self.get_object_or_404()
        return self.render(
            selectors.llm_choices(user=user_signed_in(user=request.user), session=session)
        )

    @extend_schema(parameters=[s.EventsQuery])
    @action(detail=True, methods=["get"], url_path="events")
    def events(self, request: Request, pk: str) -> Response:
        session = self._session()
        query = self.validated_query(s.EventsQuery, request)
        frames = selectors.frames_after(
            session_id=session.pk, after_seq=query["after_seq"], limit=query["limit"]
        )
        return self.render({"last_seq": session.last_seq, "results": frames})
