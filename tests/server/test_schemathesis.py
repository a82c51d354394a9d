"""Property-based API testing with schemathesis: no input gives a 5xx, every answer matches the
OpenAPI document (status codes, content types, bodies).

Runs in-process against the app over a real vggeo store (features served), positive and negative
examples for every operation, bounded so that the whole run stays within a minute or two.
(schemathesis' own pytest plugin does not load under pytest 9, so the operations are driven
through hypothesis directly.)
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

pytestmark = pytest.mark.slow

CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_schema_conformance]  # fmt: skip
EXAMPLES = 30


@pytest.fixture(scope="module")
def operations(ogc):
    schema = schemathesis.openapi.from_asgi("/openapi.json", ogc.app)
    return {op.label: op for op in (r.ok() for r in schema.get_all_operations())}


def _run(operation, mode: GenerationMode) -> bool:
    """Run the examples; False when the mode has none (no parameter to make invalid)."""
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    def check(case):
        case.call_and_validate(checks=CHECKS)

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
