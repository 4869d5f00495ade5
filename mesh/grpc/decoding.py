"""Request parsing and uncaught errors of every handler, in one place.

grpcio parses a request before the handler runs and answers a parse failure (or any exception
a handler lets escape) with UNKNOWN and the exception's text. Here a request that does not
parse is INVALID_ARGUMENT `malformed_message` with a generic message, and whatever else escapes
a handler goes through the one status table (`status.abort_with`: domain errors by category,
anything else INTERNAL with a generic message).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import grpc

from cortex.errors import ValidationFailed
from mesh.grpc.status import abort_with

_KINDS = {
    "unary_unary": grpc.unary_unary_rpc_method_handler,
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}


class MalformedMessage(ValidationFailed):
    code = "malformed_message"
    default_message = "The message could not be parsed."


def guarded(
    handler: grpc.RpcMethodHandler, wrap: Callable[[Any], Any] | None = None
) -> grpc.RpcMethodHandler:
    """`handler` (its behaviour wrapped by `wrap`, if given) with guarded parsing and errors.

    A single request is parsed inside the behaviour, where the call can be aborted; a stream's
    messages are parsed by a deserializer that raises `MalformedMessage`, which leaves the
    handler's iteration like any domain error and is mapped on the way out.
    """
    for attr, make in _KINDS.items():
        behaviour = getattr(handler, attr)
        if behaviour is None:
            continue
        if wrap is not None:
            behaviour = wrap(behaviour)
        parse = handler.request_deserializer
        if attr.startswith("unary_"):
            run, deserializer = _parsing(behaviour, parse), None
        else:
            run, deserializer = _mapped(behaviour, lambda r: r), _strict(parse)
        return make(
            run,
            request_deserializer=deserializer,
            response_serializer=handler.response_serializer,
        )
    return handler  # pragma: no cover - every handler has one behaviour


def _decode(parse: Callable[[bytes], Any] | None, raw: Any) -> Any:
    if parse is None:
        return raw
    try:
        return parse(raw)
    except Exception:  # DecodeError, or anything a parser raises: never its text
        raise MalformedMessage() from None


def _strict(parse: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if parse is None:
        return None
    return lambda raw: _decode(parse, raw)


def _parsing(behaviour: Callable[..., Any], parse: Callable[[bytes], Any] | None) -> Any:
    return _mapped(behaviour, lambda raw: _decode(parse, raw))


def _mapped(behaviour: Callable[..., Any], prepare: Callable[[Any], Any]) -> Any:
    """`behaviour` whose request goes through `prepare` and whose errors get our statuses."""
    if inspect.isasyncgenfunction(behaviour):

        async def stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                async for reply in behaviour(prepare(request), context):
                    yield reply
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await abort_with(context, exc)

        return stream

    async def run(request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await behaviour(prepare(request), context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await abort_with(context, exc)

    return run
