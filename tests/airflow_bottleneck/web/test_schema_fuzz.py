"""A property-based run of the plugin's own OpenAPI schema (schemathesis), authenticated, in
Airflow's real API server app: whatever the parameters, never a 5xx, and every status is one
the schema documents."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance

EXAMPLES_PER_OPERATION = 40
# Every route of the plugin app: the two lists, a report (JSON or Markdown, and .md), a
# comparison, a run's forecast, a DAG's criticality, and the page.
OPERATIONS = 8


def test_no_input_gives_a_server_error(api_app, token, seeded) -> None:
    headers = {"Authorization": f"Bearer {token('admin', 'admin')}"}
    schema = schemathesis.openapi.from_asgi("/bottlenecks/openapi.json", api_app, headers=headers)
    schema.config.update(base_url="http://localhost/bottlenecks", headers=headers)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == OPERATIONS, [op.label for op in operations]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def no_server_error(case) -> None:
            response = case.call()
            case.validate_response(response, checks=[not_a_server_error, status_code_conformance])

        no_server_error()
