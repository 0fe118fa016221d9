"""The OpenAPI document against the code it describes.

Two ways it could drift, two tests: a route added or removed without the document (the
route table and the document's operations must be the same set), and an answer the
document does not describe (schemathesis calls every operation of the served document on a
live stack, public ones anonymously and private ones as a funded user, and checks each
answer's status, content type and body against it; any 500 fails too).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

import hypothesis
import jsonschema_rs
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis.strategies import SearchStrategy
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from gateway_svc.apidoc.app import DOC_PATH, DOCS_PATH
from gateway_svc.app import create_app
from gateway_svc.openapi import DOCUMENT
from tests.gateway.conftest import Stack, gateway_settings
from tests.gateway.test_rest import fund, signup

Case = schemathesis.Case[Any]
# Every check of schemathesis that needs no state across calls, but positive_data_acceptance:
# valid requests may be refused by design (an unknown market, too little money).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    missing_required_header,
    unsupported_method,
    allow_header_conformance,
    ignored_auth,
]
# Hypothesis cases per operation: of each example in the document, then valid and invalid
# generated requests. Derandomized, so every run makes the same requests.
EXAMPLES = 3
VALID = 25
INVALID = 15


def test_every_route_is_documented_and_every_operation_is_a_route() -> None:
    app = create_app(gateway_settings("127.0.0.1:1", "127.0.0.1:2", "redis://127.0.0.1:3/0"))
    routes = {(r.method.lower(), r.resource.canonical) for r in app.router.routes() if r.resource}
    # aiohttp answers HEAD wherever it answers GET; the document leaves that implicit.
    assert {path for method, path in routes if method == "head"} == {
        path for method, path in routes if method == "get"
    }
    # OPTIONS is every route's CORS preflight (aiohttp-cors), not an operation of its own.
    assert {path for method, path in routes if method == "options"} == {path for _, path in routes}
    served = {(method, path) for method, path in routes if method not in ("head", "options")}
    documented = {(method, path) for path, ops in DOCUMENT["paths"].items() for method in ops}
    assert served - documented == set(), "routes missing from the document"
    assert documented - served == set(), "documented operations with no route"


def test_operation_ids_are_unique_and_every_reference_resolves() -> None:
    ids = [op["operationId"] for ops in DOCUMENT["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    components = DOCUMENT["components"]

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            own = [node["$ref"]] if "$ref" in node else []
            return own + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for value in node for r in refs(value)]
        return []

    for ref in refs(DOCUMENT):
        _, kind, name = ref.removeprefix("#/").split("/")
        assert name in components[kind], ref


async def test_the_document_and_the_docs_page_are_served(stack: Stack) -> None:
    response = await stack.client.get(DOC_PATH)
    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.json() == DOCUMENT

    page = await stack.client.get(DOCS_PATH)
    assert page.status == 200
    assert page.content_type == "text/html"
    text = await page.text()
    assert "<script" not in text  # renders with no network and no script
    for path in DOCUMENT["paths"]:
        assert f"<code>{path}</code>" in text


@pytest.mark.timeout(900)  # every operation of three dialects, on a shared machine
async def test_schemathesis_finds_no_failure_in_any_operation(stack: Stack) -> None:
    _, auth = await signup(stack, "schemathesis@example.com")
    await fund(stack, auth, "INR", "10000")
    await fund(stack, auth, "TATA", "100")
    # Something to find, cancel and list: a resting order and a trade against it.
    for side, price in (("Ask", "20"), ("Bid", "10"), ("Bid", "20")):
        order = {"symbol": "TATA_INR", "side": side, "price": price, "quantity": "1"}
        placed = await stack.client.post("/api/v1/order", json=order, headers=auth)
        assert placed.status == 200, await placed.text()
    await stack.caught_up()

    failures = await asyncio.to_thread(run_schemathesis, stack.url, auth)
    assert not failures, "\n\n".join(failures)


async def test_inputs_that_answered_500_answer_4xx(stack: Stack) -> None:
    """Each of these answered 500 before the schemathesis run found it or its cause."""
    _, auth = await signup(stack, "edge@example.com")
    client = stack.client
    too_many_digits = "1" * 5000  # int() refuses strings of more than 4300 digits
    cases = [
        client.get("/wapi/v1/history/fills?to=9223372036854775807", headers=auth),
        client.get("/wapi/v1/history/orders?orderId=9223372036854775807", headers=auth),
        client.get("/api/v1/depth?symbol=TATA_INR&limit=%C2%B2"),  # "²".isdigit()
        client.get(f"/api/v1/order?orderId={too_many_digits}", headers=auth),
        client.post("/api/v1/onramp", json={"asset": "INR", "amount": "1e999999999"}, headers=auth),
        client.post("/api/v1/onramp", json={"asset": "INR", "amount": "1e999990"}, headers=auth),
        client.post("/api/v1/onramp", json={"asset": "INR", "amount": "9" * 30}, headers=auth),
    ]
    for call in cases:
        response = await call
        assert response.status == 400, await response.text()
    # An order id past 32 bits once overflowed the ledger's query.
    fills = await client.get("/wapi/v1/history/fills?orderId=47948758169814", headers=auth)
    assert (fills.status, await fills.json()) == (200, [])
    # A 405 says what is allowed.
    wrong = await client.put("/api/v1/status")
    assert (wrong.status, wrong.headers["Allow"]) == (405, "GET,HEAD,OPTIONS")


async def test_every_state_of_a_trigger_order_matches_the_document(stack: Stack) -> None:
    """Schemathesis places no trigger orders: the views of one in each state (pending, a
    take-profit / stop-loss leg, fired and resting, failed, cancelled), from the engine
    and from order history, against the document's Order schema."""
    _, alice = await signup(stack, "trigger-doc-alice@example.com")
    _, bob = await signup(stack, "trigger-doc-bob@example.com")
    await fund(stack, alice, "INR", "1000")
    await fund(stack, alice, "TATA", "10")
    await fund(stack, bob, "INR", "1000")
    client = stack.client

    async def order(auth: dict[str, str], **fields: Any) -> dict[str, Any]:
        body = {"symbol": "TATA_INR", "quantity": "1", "orderType": "Limit", **fields}
        placed = await client.post("/api/v1/order", json=body, headers=auth)
        assert placed.status == 200, await placed.text()
        answer: dict[str, Any] = await placed.json()
        return answer

    async def got(path: str, auth: dict[str, str], **query: str) -> Any:
        response = await client.get(path, params=query, headers=auth)
        assert response.status == 200, await response.text()
        return await response.json()

    await order(alice, side="Ask", price="20")
    await order(bob, side="Bid", price="20")  # the last price: 20
    cancelled = await order(alice, side="Bid", orderType="Market", triggerPrice="30")
    gone = await client.delete(
        "/api/v1/order", json={"symbol": "TATA_INR", "orderId": cancelled["id"]}, headers=alice
    )
    assert gone.status == 200, await gone.text()
    await order(alice, side="Ask", orderType="Market", triggerPrice="10")  # stays pending
    rests = await order(alice, side="Ask", price="16", triggerPrice="15")
    fails = await order(bob, side="Ask", orderType="Market", quantity="5", triggerPrice="15")
    await order(bob, side="Ask", price="15")  # bob's only TATA: his stop cannot pay
    await order(  # trades at 15, which fires both stops; its legs wait
        alice, side="Bid", price="15", takeProfitTriggerPrice="25", stopLossTriggerPrice="5"
    )
    views = [
        *await got("/api/v1/orders", alice, symbol="TATA_INR"),
        *[await got("/api/v1/order", alice, orderId=o["id"]) for o in (cancelled, rests)],
        await got("/api/v1/order", bob, orderId=fails["id"]),
    ]
    await stack.caught_up()
    views += await got("/wapi/v1/history/orders", alice, symbol="TATA_INR")
    views += await got("/wapi/v1/history/orders", bob, symbol="TATA_INR")
    document = {"$ref": "#/components/schemas/Order", "components": DOCUMENT["components"]}
    validator = jsonschema_rs.validator_for(document)
    for view in views:
        errors = [e.message for e in validator.iter_errors(view)]
        assert not errors, (view, errors)
    seen = {(v["status"], v["triggerPrice"] is not None) for v in views}
    for status in ("TriggerPending", "New", "TriggerFailed", "Cancelled"):
        assert (status, True) in seen, seen


def run_schemathesis(base_url: str, auth: dict[str, str]) -> list[str]:
    """Every operation of the served document, called over HTTP; the failures, described.

    Per operation: schemathesis' coverage cases (boundary values, each constraint broken in
    turn, undeclared methods), the document's examples, then generated valid and invalid
    requests. Runs in a thread: its calls block, and the stack answers on the test's loop.
    """
    failures: list[str] = []
    with requests.Session() as session:
        # Not from_url: a schema loaded from a URL leaves out the operation that serves it.
        schema = schemathesis.openapi.from_dict(session.get(base_url + DOC_PATH).json())
        for result in schema.get_all_operations():
            if not isinstance(result, Ok):
                failures.append(f"not an operation schemathesis can call: {result.err()}")
                continue
            operation = result.ok()
            if operation.definition.raw.get("x-streaming"):
                continue  # an endless response: tests/stream covers it
            headers = auth if "security" in operation.definition.raw else None
            check = functools.partial(_check, base_url, session, headers)
            for case in schema.iter_coverage_cases(
                operation,
                generation_modes=list(GenerationMode),
                generation_config=schema.config.generation_for(operation=operation),
            ):
                try:
                    check(case)
                except RECORDED as exc:
                    failures.append(f"{operation.label} (coverage): {exc}")
            runs = [
                (s, "example", EXAMPLES) for s in schema.get_strategies_from_examples(operation)
            ]
            runs.append((operation.as_strategy(GenerationMode.POSITIVE), "valid", VALID))
            if operation.definition.raw.get("parameters") or operation.body:
                runs.append((operation.as_strategy(GenerationMode.NEGATIVE), "invalid", INVALID))
            for strategy, kind, examples in runs:
                try:
                    _given(strategy, examples, check)()
                except RECORDED as exc:
                    failures.append(f"{operation.label} ({kind}): {exc}")
    return failures


# A failed check raises a FailureGroup, which is no Exception.
RECORDED = (Exception, schemathesis.errors.FailureGroup)


def _check(
    base_url: str, session: requests.Session, headers: dict[str, str] | None, case: Case
) -> None:
    case.call_and_validate(base_url=base_url, session=session, headers=headers, checks=CHECKS)


def _given(
    strategy: SearchStrategy[Case], examples: int, test: Callable[[Case], None]
) -> Callable[[], None]:
    """`test` as a Hypothesis test of `examples` cases, the same ones every run."""
    settings = hypothesis.settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: report the first failure
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )

    @settings
    @hypothesis.given(strategy)
    def given(case: Case) -> None:
        test(case)

    return given
