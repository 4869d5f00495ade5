"""Schemathesis against /api/v1/schema/ in process: no 5xx, every response as the schema says.

Every operation of the schema is called with generated (schema-valid) data, as a user and as
an admin, each with its own bearer token. Examples per operation and role: CORTEX_FUZZ_EXAMPLES
(3 in `make test`, more in `make fuzz`). Failures are collected over all operations (not
stopped at the first) so the report lists every one.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import Failure, FailureGroup

from tests.trust.figures import record

EXAMPLES = int(os.environ.get("CORTEX_FUZZ_EXAMPLES", "3"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Operations that talk to providers over the network or stream audio: fuzzed elsewhere (the
# preferences and voice suites point them at loopback servers).
SKIP_PATHS: set[str] = set()


def _failures(exc: BaseException) -> list[str]:
    if isinstance(exc, FailureGroup):
        return [f"{type(f).__name__}: {f.title}" for f in exc.exceptions]
    if isinstance(exc, Failure):
        return [f"{type(exc).__name__}: {exc.title}"]
    return [f"{type(exc).__name__}: {exc}"]


class Tally:
    """What the fuzzing saw, over every operation and role."""

    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.problems: dict[str, set[str]] = {}
        self.server_errors: list[str] = []
        self.calls = 0


def _fuzz(operation: Any, role: str, account: Any, tally: Tally) -> None:
    """Call `operation` EXAMPLES times with generated data as `account`; tally what came back."""
    from accounts.services.tokens import token_create

    label = f"{role} {operation.method.upper()} {operation.path}"

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        # A fresh token per call: a generated call may revoke the caller's own token.
        _, token = token_create(actor=account, user=account, name="fuzz")
        response = case.call(headers={"Authorization": f"Bearer {token}"})
        tally.calls += 1
        tally.statuses[response.status_code] += 1
        if response.status_code >= 500:
            tally.server_errors.append(f"{label} -> {response.status_code}")
        checks = CHECKS
        if "json" not in response.headers.get("Content-Type", ""):
            # A documented text body (the YAML export is a string): schemathesis would parse
            # the YAML and compare the mapping with `type: string`. Its media type is checked.
            checks = [c for c in CHECKS if c is not response_schema_conformance]
        try:
            case.validate_response(response, checks=checks)
        except (Failure, FailureGroup, AssertionError) as exc:
            tally.problems.setdefault(label, set()).update(_failures(exc))
            if os.environ.get("CORTEX_FUZZ_DEBUG"):
                with open(os.environ["CORTEX_FUZZ_DEBUG"], "a") as out:
                    out.write(f"== {label} {response.status_code}\n{str(exc)[:1500]}\n")

    run()


@pytest.mark.django_db(transaction=True)
def test_api_conforms_to_its_schema(make_user, staff_user):
    user = make_user("fuzz@example.com")
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", WSGIHandler())
    tally = Tally()
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in SKIP_PATHS:
            continue
        operations += 1
        for role, account in (("user", user), ("admin", staff_user)):
            _fuzz(operation, role, account, tally)
    problems = {k: sorted(v) for k, v in sorted(tally.problems.items())}
    record(
        "fuzz_5xx",
        len(tally.server_errors),
        checked=tally.calls,
        detail="\n".join(tally.server_errors),
        source=f"tests/trust/test_fuzz_api.py ({operations} operations x user/admin, "
        f"{EXAMPLES} examples each; statuses {dict(sorted(tally.statuses.items()))})",
    )
    record(
        "schema_violations",
        len(problems),
        checked=tally.calls,
        detail=json.dumps(problems, indent=1) if problems else "",
        source="tests/trust/test_fuzz_api.py (status code, content type, response body)",
    )
    assert operations > 40
    assert not tally.server_errors, "\n".join(tally.server_errors)
    assert not problems, json.dumps(problems, indent=1)
