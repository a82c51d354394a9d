"""Property-based API testing with schemathesis: no input gives a 5xx, every answer matches the
OpenAPI document (status codes, content types, bodies).

Runs in-process against the app over a real vggeo store (features served), positive and negative
examples for every operation, bounded so that the whole run stays within a minute or two.
(schemathesis' own pytest plugin does not load under pytest 9, so the operations are driven
through hypothesis directly.)
"""

import pytest
import schemathesis
from _auth_fixtures import auth_settings, make_client
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

pytestmark = pytest.mark.slow

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
EXAMPLES = 30


# Apps of their own, not the session's `ogc` and `secured` clients: schemathesis runs an app's
# start-up and shut-down around every call, and a shut-down closes the store the app holds, so a
# shared app was left with a closed store for the tests that came after (test_auth, run after
# this module, failed nine tests).


@pytest.fixture(scope="module")
def operations(vg_store):
    from vggeo_server import Settings, create_app

    settings = Settings(
        _env_file=None,
        store=str(vg_store[0]),
        reload_interval=0,
        base_url="https://maps.example/vggeo",
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(settings))
    return {op.label: op for op in (r.ok() for r in schema.get_all_operations())}


@pytest.fixture(scope="module")
def secured_operations(vg_store, api_keys, jwks_file):
    app = make_client(vg_store[0], auth_settings(api_keys, jwks_file)).app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return {op.label: op for op in (r.ok() for r in schema.get_all_operations())}


def _run(operation, mode: GenerationMode, headers=None, examples: int = EXAMPLES) -> bool:
    """Run the examples; False when the mode has none (no parameter to make invalid)."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(case):
        case.call_and_validate(checks=CHECKS, headers=headers)

    try:
        check()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        return False
    return True


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_answers_as_documented(operations, mode):
    assert len(operations) >= 16, sorted(operations)
    ran = [label for label, operation in operations.items() if _run(operation, mode)]
    assert len(ran) >= 10, ran


@pytest.mark.parametrize("who", ["anonymous", "locations", "full"])
def test_with_access_control_every_operation_answers_as_documented(
    secured_operations, api_keys, who
):
    """Access control on: anonymous callers (401 where data needs a scope), a key that sees
    residences without their attributes (403 on attribute filters), a key that sees all."""
    headers = None if who == "anonymous" else {"X-API-Key": getattr(api_keys, who)}
    ran = [
        label
        for label, op in secured_operations.items()
        if _run(op, GenerationMode.POSITIVE, headers, examples=EXAMPLES // 2)
    ]
    assert len(ran) >= 16, ran
    negative = [
        label
        for label, op in secured_operations.items()
        if _run(op, GenerationMode.NEGATIVE, headers, examples=EXAMPLES // 3)
    ]
    assert len(negative) >= 10, negative
