"""schemathesis against the partner API's OpenAPI document: every operation, with valid and invalid input,
must answer as the document says (status, content type, headers, body schema) and never with a 500.

The calls go over real HTTPS, with a real bearer token, to a running public surface. The document is
built when this module loads (schemathesis makes one test per operation at collection time, before any
server runs), and a test checks that it is exactly the one the server serves at ``/openapi.json``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from certs.devnet import DEV_MEMBERS
from demo.network import Network
from node.intake import openapi
from tests.conftest import make_network

NL = DEV_MEMBERS[0].member_id
SERVICE_NAME = DEV_MEMBERS[0].name.split(" (")[0]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture(scope="module")
def partner_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    network: Network = make_network(
        tmp_path_factory.mktemp("openapi"),
        "sqlite",
        None,
        members=(DEV_MEMBERS[0],),
        PARTNER_RATE_LIMIT="100000/minute",
        PUBLIC_RATE_LIMIT_TOKEN="100000/minute",
    )
    public_url = network.public(NL)
    partner = network.partner(NL)
    token = partner.fetch_token()["access_token"]
    session = requests.Session()
    session.trust_env = False
    document = session.get(f"{public_url}/openapi.json", verify=str(network.layout.web.ca)).json()
    yield {
        "network": network,
        "url": public_url,
        "token": token,
        "document": document,
        "ca": str(network.layout.web.ca),
    }
    partner.close()
    network.stop()


schema = schemathesis.openapi.from_dict(openapi.document(service_name=SERVICE_NAME))


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_partner_api_answers_as_its_document_says(case: Any, partner_api: dict[str, Any]) -> None:
    case.call_and_validate(
        base_url=partner_api["url"],
        headers={"Authorization": f"Bearer {partner_api['token']}"},
        verify=partner_api["ca"],
        timeout=30,
        checks=CHECKS,
    )


def test_the_document_is_openapi_3_1_served_as_tested_and_covers_every_route(partner_api: dict[str, Any]) -> None:
    document = partner_api["document"]
    assert document == openapi.document(service_name=SERVICE_NAME)
    assert document["openapi"] == "3.1.0"
    operations = {(path, method) for path, item in document["paths"].items() for method in item}
    assert operations == {
        ("/oauth/token", "post"),
        ("/api/v1/reports", "post"),
        ("/api/v1/reports", "get"),
        ("/api/v1/reports/batch", "post"),
        ("/api/v1/reports/{report_id}", "get"),
    }
    from node import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "k" * 40}, surface="public")
    served = {
        rule.rule.replace("<report_id>", "{report_id}")
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(("/api/", "/oauth/"))
    }
    assert served == {path for path, _ in operations}
    # The request bodies are the schemas the API validates with.
    import schemas

    assert document["components"]["schemas"]["PartnerReport"] == schemas.self_contained("partner-report")
