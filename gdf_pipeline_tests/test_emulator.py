"""Conformance of the GoDataFeed emulator to the project's API contract, over real HTTP.

One test (or one table row) per rule of the contract, through plain `requests` on loopback and
through both v1 (token in the path) and v2 (Bearer header): authorization and tokens, listing
and its parameters, pages cut at request time, reading one order, the acknowledgement and
status-update tables, money exactness, the leaky bucket and `Retry-After`, the seeded faults,
the order generator, and the command line run as a subprocess.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from decimal import Decimal

import pytest
import requests
import simplejson

from gdf_pipeline.emulator import Emulator, Faults
from gdf_pipeline.emulator import store as emulator_store
from gdf_pipeline.emulator.server import redact
from gdf_pipeline.gdf import contract
from gdf_pipeline.gdf.contract import (
    ACKNOWLEDGED,
    CANCELLED,
    NEW,
    SHIPPED,
)

TOKEN = re.compile(r"[0-9a-f]{32}")
SHIP = {
    "status": SHIPPED,
    "shipDate": "2099-12-03T14:05:00-05:00",
    "carrier": "UPS",
    "shippingMethod": "Ground",
    "trackingNumber": "1Z999AA10123456784",
}


class Api:
    """Plain HTTP calls against the emulator, as v1 or v2."""

    def __init__(self, emulator: Emulator, version: str = "v1"):
        self.emulator = emulator
        self.version = version
        self.session = requests.Session()
        self.token = self.authorize()

    def authorize(self) -> str:
        answer = self.session.get(
            self.emulator.url + contract.AUTHORIZATION_PATH,
            params={contract.CONSUMER_KEY_PARAM: self.emulator.consumer_key},
        )
        assert answer.status_code == 200, answer.text
        return answer.json()[contract.TOKEN_FIELD]

    def url(self, resource: str) -> str:
        if self.version == "v1":
            return self.emulator.url + contract.V1_PREFIX.format(token=self.token) + resource
        return self.emulator.url + contract.V2_PREFIX + resource

    def call(self, method: str, resource: str, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if self.version == "v2":
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return self.session.request(method, self.url(resource), headers=headers, **kwargs)

    def list(self, **params) -> requests.Response:
        return self.call("GET", contract.ORDERS_PATH, params=params)

    def all_pages(self, page_size: int = 250, **params) -> list[dict]:
        orders, page = [], 1
        while True:
            answer = self.list(page=page, pageSize=page_size, **params).json()
            orders += answer["orders"]
            if len(answer["orders"]) < page_size:
                return orders
            page += 1

    def get(self, order_id: str) -> requests.Response:
        return self.call("GET", contract.ORDER_PATH.format(order_id=order_id))

    def acknowledge(
        self, order_id: str, number: str | None = "SO-1", **kwargs
    ) -> requests.Response:
        if "data" not in kwargs and "json" not in kwargs:
            kwargs["json"] = {contract.SELLER_ORDER_NUMBER_FIELD: number}
        return self.call("POST", contract.ACKNOWLEDGE_PATH.format(order_id=order_id), **kwargs)

    def update(self, order_id: str, body=None, **kwargs) -> requests.Response:
        if body is not None:
            kwargs["json"] = body
        return self.call("PUT", contract.STATUS_PATH.format(order_id=order_id), **kwargs)


def exact(response: requests.Response):
    """The body parsed with every number as a Decimal, as the contract asks of clients."""
    return json.loads(response.text, parse_float=Decimal)


def assert_error(response: requests.Response, status: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {contract.MESSAGE_FIELD}
    assert isinstance(body[contract.MESSAGE_FIELD], str) and body[contract.MESSAGE_FIELD]


def move_to(api: Api, order_id: str, status: str) -> None:
    """Brings a NEW order to `status` through the API."""
    if status in (ACKNOWLEDGED, SHIPPED):
        assert api.acknowledge(order_id, "SO-1").status_code == 200
    if status == SHIPPED:
        assert api.update(order_id, SHIP).status_code == 200
    if status == CANCELLED:
        assert api.update(order_id, {"status": CANCELLED}).status_code == 200


@pytest.fixture(params=["v1", "v2"])
def api(request, emulator) -> Api:
    return Api(emulator, request.param)


@pytest.fixture
def first_id(emulator) -> str:
    return emulator.all_orders()[0]["id"]


# Authorization and tokens.


def test_authorization_issues_a_never_expiring_32_hex_token(emulator):
    answer = requests.get(
        emulator.url + contract.AUTHORIZATION_PATH,
        params={contract.CONSUMER_KEY_PARAM: emulator.consumer_key},
    )

    assert answer.status_code == 200
    assert TOKEN.fullmatch(answer.json()[contract.TOKEN_FIELD])
    assert answer.json()[contract.EXPIRES_AT_FIELD] is None


@pytest.mark.parametrize("days", [7, 14, 30])
def test_token_lifespan_sets_expires_at(days):
    with Emulator(token_lifespan_days=days, rate_burst=0) as emulator:
        api = Api(emulator)
        answer = requests.get(
            emulator.url + contract.AUTHORIZATION_PATH,
            params={contract.CONSUMER_KEY_PARAM: emulator.consumer_key},
        ).json()

    expires_at = datetime.fromisoformat(answer[contract.EXPIRES_AT_FIELD])
    expected = datetime.now(UTC) + timedelta(days=days)
    assert abs(expires_at - expected) < timedelta(seconds=5)
    assert api.token != answer[contract.TOKEN_FIELD]


def test_token_lifespan_outside_the_documented_values_is_refused():
    with pytest.raises(ValueError, match="7, 14 or 30"):
        Emulator(token_lifespan_days=3)


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({contract.CONSUMER_KEY_PARAM: "not-the-key"}, id="unknown key"),
        pytest.param({contract.CONSUMER_KEY_PARAM: ""}, id="empty key"),
        pytest.param({}, id="no key"),
    ],
)
def test_authorization_refuses_unknown_keys(emulator, params):
    answer = requests.get(emulator.url + contract.AUTHORIZATION_PATH, params=params)

    assert_error(answer, 401)


def test_consumer_key_is_seeded_unless_given():
    assert Emulator(seed=4).consumer_key == Emulator(seed=4).consumer_key
    assert Emulator(seed=4).consumer_key != Emulator(seed=5).consumer_key
    assert Emulator(consumer_key="my-key").consumer_key == "my-key"


def test_earlier_tokens_stay_valid_after_a_new_one(emulator):
    first = Api(emulator)
    second = Api(emulator)

    assert first.token != second.token
    assert first.list().status_code == second.list().status_code == 200


@pytest.mark.parametrize(
    "version, token, headers",
    [
        pytest.param("v1", "0" * 32, {}, id="v1 unknown token"),
        pytest.param("v1", "not-hex", {}, id="v1 malformed token"),
        pytest.param("v2", None, {}, id="v2 no header"),
        pytest.param("v2", None, {"Authorization": "Bearer " + "0" * 32}, id="v2 unknown"),
        pytest.param("v2", None, {"Authorization": "Basic dXNlcjpwYXNz"}, id="v2 not bearer"),
    ],
)
def test_unknown_tokens_answer_401(emulator, version, token, headers):
    if version == "v1":
        url = emulator.url + contract.V1_PREFIX.format(token=token) + contract.ORDERS_PATH
    else:
        url = emulator.url + contract.V2_PREFIX + contract.ORDERS_PATH

    assert_error(requests.get(url, headers=headers), 401)


def test_v2_accepts_tokens_from_v1_authorization(emulator):
    token = Api(emulator).token
    url = emulator.url + contract.V2_PREFIX + contract.ORDERS_PATH

    assert requests.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_expired_tokens_answer_401_until_a_new_one_is_asked(api):
    api.emulator.expire_tokens()

    assert_error(api.list(), 401)
    api.token = api.authorize()
    assert api.list().status_code == 200


def test_tokens_expire_at_the_end_of_their_lifespan(monkeypatch):
    with Emulator(token_lifespan_days=7, rate_burst=0) as emulator:
        api = Api(emulator)
        assert api.list().status_code == 200
        later = datetime.now(UTC) + timedelta(days=7, seconds=1)
        monkeypatch.setattr(emulator_store, "_now", lambda: later)

        assert_error(api.list(), 401)


def test_tokens_expire_after_the_configured_number_of_calls(emulator):
    emulator.faults = Faults(token_expiry_calls=3)
    api = Api(emulator)

    assert [api.list().status_code for _ in range(4)] == [200, 200, 200, 401]
    api.token = api.authorize()
    assert api.list().status_code == 200


# Listing.


def test_list_defaults_to_page_1_of_50(api):
    answer = api.list()

    assert answer.status_code == 200
    body = answer.json()
    assert list(body) == ["page", "pageSize", "totalCount", "orders"]
    assert (body["page"], body["pageSize"], body["totalCount"]) == (1, 50, 60)
    assert len(body["orders"]) == 50


def test_list_is_sorted_by_imported_at_then_id(api):
    orders = api.all_pages(page_size=7)
    keys = [(datetime.fromisoformat(o["importedAt"]), o["id"]) for o in orders]

    assert len(orders) == 60
    assert keys == sorted(keys)
    # Imports run in batches: ties on importedAt are common, so the id tie-break is exercised.
    assert len({o["importedAt"] for o in orders}) < len(orders)


@pytest.mark.parametrize("page_size", [1, 250])
def test_list_accepts_page_sizes_at_the_bounds(api, page_size):
    body = api.list(pageSize=page_size).json()

    assert body["pageSize"] == page_size
    assert len(body["orders"]) == min(page_size, 60)


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"pageSize": 0}, id="pageSize 0"),
        pytest.param({"pageSize": 251}, id="pageSize 251"),
        pytest.param({"pageSize": -1}, id="pageSize negative"),
        pytest.param({"pageSize": "ten"}, id="pageSize not a number"),
        pytest.param({"pageSize": "2.5"}, id="pageSize fraction"),
        pytest.param({"pageSize": ""}, id="pageSize empty"),
        pytest.param({"page": 0}, id="page 0"),
        pytest.param({"page": -2}, id="page negative"),
        pytest.param({"page": "x"}, id="page not a number"),
        pytest.param({"page": [1, 2]}, id="page twice"),
        pytest.param({"status": "new"}, id="status lower case"),
        pytest.param({"status": "SHIPPING"}, id="status unknown"),
        pytest.param({"status": ""}, id="status empty"),
        pytest.param({"modifiedSince": "yesterday"}, id="modifiedSince not a date"),
        pytest.param({"modifiedSince": "2026-12-03"}, id="modifiedSince date only"),
        pytest.param({"modifiedSince": "2026-12-03T09:30:04"}, id="modifiedSince no offset"),
        pytest.param({"modifiedSince": "2026-13-03T09:30:04Z"}, id="modifiedSince month 13"),
    ],
)
def test_list_refuses_invalid_parameters(api, params):
    assert_error(api.list(**params), 400)


def test_list_filters_by_status(api, first_id):
    move_to(api, first_id, ACKNOWLEDGED)

    new = api.list(status=NEW, pageSize=250).json()
    acknowledged = api.list(status=ACKNOWLEDGED).json()
    everything = api.list(pageSize=250).json()

    assert first_id not in {o["id"] for o in new["orders"]}
    assert [o["id"] for o in acknowledged["orders"]] == [first_id]
    assert (new["totalCount"], acknowledged["totalCount"], everything["totalCount"]) == (59, 1, 60)
    assert api.list(status=SHIPPED).json()["totalCount"] == 0


def test_modified_since_keeps_orders_modified_at_or_after_it(api, first_id):
    changed = api.acknowledge(first_id).json()

    since = changed["modifiedAt"]
    answer = api.list(modifiedSince=since).json()
    just_after = datetime.fromisoformat(since) + timedelta(seconds=1)
    later = api.list(modifiedSince=just_after.isoformat()).json()

    assert first_id in {o["id"] for o in answer["orders"]}
    assert all(o["modifiedAt"] >= since for o in answer["orders"])
    assert first_id not in {o["id"] for o in later["orders"]}


def test_modified_since_accepts_offsets_and_fractions(api):
    for since in ("2000-01-01T00:00:00Z", "2000-01-01T05:30:00.123+05:30", "2000-01-01T00:00Z"):
        assert api.list(modifiedSince=since).json()["totalCount"] == 60, since


def test_page_past_the_end_is_empty(api):
    body = api.list(page=99, pageSize=50).json()

    assert (body["page"], body["totalCount"], body["orders"]) == (99, 60, [])


def test_acknowledging_between_pages_shifts_later_orders_forward(api):
    expected = [o["id"] for o in api.list(status=NEW, pageSize=250).json()["orders"]]

    first_page = api.list(status=NEW, page=1, pageSize=5).json()["orders"]
    for order in first_page:
        api.acknowledge(order["id"])
    second_page = api.list(status=NEW, page=2, pageSize=5).json()

    assert [o["id"] for o in first_page] == expected[0:5]
    # The five orders that were 6th to 10th moved onto page 1 and are skipped.
    assert [o["id"] for o in second_page["orders"]] == expected[10:15]
    assert second_page["totalCount"] == 55


def test_orders_imported_between_pages_are_appended(api, emulator):
    first = api.list(page=1, pageSize=50).json()

    imported = emulator.import_orders(3)
    second = api.list(page=2, pageSize=50).json()

    assert second["totalCount"] == first["totalCount"] + 3
    assert sorted(o["id"] for o in second["orders"][-3:]) == sorted(imported)
    for order_id in imported:
        order = emulator.order(order_id)
        assert order["status"] == NEW
        age = datetime.now(UTC) - datetime.fromisoformat(order["importedAt"])
        assert timedelta(0) <= age < timedelta(seconds=5)


def test_import_during_paging_fault_imports_before_later_pages(emulator):
    emulator.faults = Faults(import_during_paging=4)
    api = Api(emulator)

    first = api.list(page=1, pageSize=10).json()
    second = api.list(page=2, pageSize=10).json()
    third = api.list(page=3, pageSize=10).json()

    assert [first["totalCount"], second["totalCount"], third["totalCount"]] == [60, 64, 68]
    assert emulator.count(NEW) == 68


def test_listed_orders_carry_every_contract_field(api):
    for order in api.list(pageSize=250).json()["orders"]:
        assert set(contract.ORDER_FIELDS) <= set(order)
        assert set(contract.CUSTOMER_FIELDS) <= set(order["customer"])
        assert set(contract.ADDRESS_FIELDS) <= set(order["shippingAddress"])
        for item in order["items"]:
            assert set(contract.ITEM_FIELDS) <= set(item)


# One order.


def test_get_order_answers_the_listed_order(api, first_id):
    answer = api.get(first_id)

    assert answer.status_code == 200
    assert exact(answer) == exact(api.list(pageSize=1))["orders"][0]


def test_get_unknown_order_answers_404(api):
    assert_error(api.get("f" * 32), 404)


# Acknowledgements.


@pytest.mark.parametrize(
    "status, body, expected",
    [
        pytest.param(NEW, {"sellerOrderNumber": "SO-1"}, 200, id="NEW"),
        pytest.param(NEW, {"sellerOrderNumber": "S" * 50}, 200, id="50 characters"),
        pytest.param(NEW, {"sellerOrderNumber": "№ 1 ✓"}, 200, id="unicode number"),
        pytest.param(ACKNOWLEDGED, {"sellerOrderNumber": "SO-1"}, 200, id="same number again"),
        pytest.param(ACKNOWLEDGED, {"sellerOrderNumber": "SO-2"}, 409, id="other number"),
        pytest.param(SHIPPED, {"sellerOrderNumber": "SO-1"}, 409, id="SHIPPED"),
        pytest.param(CANCELLED, {"sellerOrderNumber": "SO-1"}, 409, id="CANCELLED"),
        pytest.param(NEW, {}, 400, id="number missing"),
        pytest.param(NEW, {"sellerOrderNumber": ""}, 400, id="empty number"),
        pytest.param(NEW, {"sellerOrderNumber": "S" * 51}, 400, id="51 characters"),
        pytest.param(NEW, {"sellerOrderNumber": 123}, 400, id="number not a string"),
        pytest.param(NEW, {"sellerOrderNumber": None}, 400, id="number null"),
        pytest.param(NEW, ["SO-1"], 400, id="body not an object"),
        pytest.param(NEW, None, 400, id="no body"),
    ],
)
def test_acknowledge_follows_the_contract_table(api, first_id, status, body, expected):
    move_to(api, first_id, status)
    before = api.emulator.order(first_id)

    answer = (
        api.acknowledge(first_id, json=body)
        if body is not None
        else api.acknowledge(first_id, data=b"")
    )

    if expected != 200:
        assert_error(answer, expected)
        assert api.emulator.order(first_id) == before
        return
    assert answer.status_code == 200
    order = answer.json()
    assert order["status"] == ACKNOWLEDGED
    assert order["sellerOrderNumber"] == body["sellerOrderNumber"]
    assert order == json.loads(simplejson.dumps(api.emulator.order(first_id), use_decimal=True))
    if status == ACKNOWLEDGED:
        assert api.emulator.order(first_id) == before


def test_acknowledge_sets_time_and_modified_at(api, first_id):
    before = api.emulator.order(first_id)

    order = api.acknowledge(first_id, "SO-42").json()

    now = datetime.now(UTC)
    acknowledged_at = datetime.fromisoformat(order["acknowledgedAt"])
    assert timedelta(0) <= now - acknowledged_at < timedelta(seconds=5)
    assert order["modifiedAt"] == order["acknowledgedAt"]
    assert datetime.fromisoformat(order["modifiedAt"]) > datetime.fromisoformat(
        before["modifiedAt"]
    )


def test_acknowledge_refuses_invalid_json(api, first_id):
    answer = api.acknowledge(first_id, data=b'{"sellerOrderNumber": "SO-', headers={})

    assert_error(answer, 400)


def test_acknowledge_unknown_order_answers_404(api):
    assert_error(api.acknowledge("e" * 32), 404)


def test_concurrent_acknowledgements_with_different_numbers_have_one_winner(emulator, first_id):
    results: list[int] = []

    def acknowledge(number: str) -> None:
        results.append(Api(emulator).acknowledge(first_id, number).status_code)

    threads = [threading.Thread(target=acknowledge, args=(f"SO-{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [200] + [409] * 7


# Status updates.


@pytest.mark.parametrize(
    "status, body, expected, final",
    [
        pytest.param(ACKNOWLEDGED, SHIP, 200, SHIPPED, id="ship"),
        pytest.param(ACKNOWLEDGED, dict(SHIP, trackingNumber=""), 200, SHIPPED, id="no tracking"),
        pytest.param(
            ACKNOWLEDGED,
            {k: v for k, v in SHIP.items() if k != "shippingMethod"},
            200,
            SHIPPED,
            id="no shipping method",
        ),
        pytest.param(NEW, SHIP, 409, NEW, id="ship from NEW"),
        pytest.param(CANCELLED, SHIP, 409, CANCELLED, id="ship a CANCELLED order"),
        pytest.param(SHIPPED, SHIP, 200, SHIPPED, id="same shipment again"),
        pytest.param(
            SHIPPED,
            dict(SHIP, shipDate="2099-12-03T19:05:00Z"),
            200,
            SHIPPED,
            id="same instant other offset",
        ),
        pytest.param(SHIPPED, dict(SHIP, trackingNumber="1Z2"), 409, SHIPPED, id="other shipment"),
        pytest.param(SHIPPED, dict(SHIP, carrier="FedEx"), 409, SHIPPED, id="other carrier"),
        pytest.param(
            ACKNOWLEDGED,
            {k: v for k, v in SHIP.items() if k != "shipDate"},
            400,
            ACKNOWLEDGED,
            id="no ship date",
        ),
        pytest.param(
            ACKNOWLEDGED,
            dict(SHIP, shipDate="2099-12-03T14:05:00"),
            400,
            ACKNOWLEDGED,
            id="ship date without offset",
        ),
        pytest.param(
            ACKNOWLEDGED, dict(SHIP, shipDate="soon"), 400, ACKNOWLEDGED, id="ship date garbage"
        ),
        pytest.param(
            ACKNOWLEDGED,
            dict(SHIP, shipDate="2000-01-01T00:00:00Z"),
            400,
            ACKNOWLEDGED,
            id="ship date before order date",
        ),
        pytest.param(
            ACKNOWLEDGED,
            {k: v for k, v in SHIP.items() if k != "carrier"},
            400,
            ACKNOWLEDGED,
            id="no carrier",
        ),
        pytest.param(ACKNOWLEDGED, dict(SHIP, carrier=""), 400, ACKNOWLEDGED, id="empty carrier"),
        pytest.param(
            ACKNOWLEDGED,
            {k: v for k, v in SHIP.items() if k != "trackingNumber"},
            400,
            ACKNOWLEDGED,
            id="no tracking number field",
        ),
        pytest.param(NEW, {"status": CANCELLED}, 200, CANCELLED, id="cancel NEW"),
        pytest.param(ACKNOWLEDGED, {"status": CANCELLED}, 200, CANCELLED, id="cancel ACKNOWLEDGED"),
        pytest.param(CANCELLED, {"status": CANCELLED}, 200, CANCELLED, id="cancel again"),
        pytest.param(SHIPPED, {"status": CANCELLED}, 409, SHIPPED, id="cancel SHIPPED"),
        pytest.param(
            NEW, {"status": CANCELLED, "reason": "OutOfStock"}, 200, CANCELLED, id="reason ignored"
        ),
        pytest.param(ACKNOWLEDGED, {"status": NEW}, 400, ACKNOWLEDGED, id="status NEW"),
        pytest.param(NEW, {"status": ACKNOWLEDGED}, 400, NEW, id="status ACKNOWLEDGED"),
        pytest.param(ACKNOWLEDGED, {"status": "shipped"}, 400, ACKNOWLEDGED, id="lower case"),
        pytest.param(ACKNOWLEDGED, {"carrier": "UPS"}, 400, ACKNOWLEDGED, id="no status"),
        pytest.param(ACKNOWLEDGED, [SHIP], 400, ACKNOWLEDGED, id="body not an object"),
    ],
)
def test_status_update_follows_the_contract(api, first_id, status, body, expected, final):
    move_to(api, first_id, status)
    before = api.emulator.order(first_id)

    answer = api.update(first_id, body)

    after = api.emulator.order(first_id)
    assert after["status"] == final
    if expected != 200:
        assert_error(answer, expected)
        assert after == before
        return
    assert answer.status_code == 200
    assert answer.json() == json.loads(simplejson.dumps(after, use_decimal=True))
    assert "reason" not in after
    if status == final:
        assert after == before, "a repeated update changes nothing"
    elif final == SHIPPED:
        assert after["shipment"] == {
            "carrier": body["carrier"],
            "shippingMethod": body.get("shippingMethod"),
            "trackingNumber": body["trackingNumber"],
            "shipDate": body["shipDate"],
        }
    else:
        assert after["cancelledAt"] == after["modifiedAt"]
        assert after["shipment"] is None


def test_status_update_changes_modified_at(api, emulator):
    order_id = emulator.all_orders()[1]["id"]
    before = emulator.order(order_id)["modifiedAt"]

    shipped = (api.acknowledge(order_id), api.update(order_id, SHIP))[1].json()

    assert datetime.fromisoformat(shipped["modifiedAt"]) > datetime.fromisoformat(before)
    assert (
        timedelta(0)
        <= datetime.now(UTC) - datetime.fromisoformat(shipped["modifiedAt"])
        < timedelta(seconds=5)
    )


def test_date_only_ship_date_is_stored_as_midnight(api, first_id, emulator):
    move_to(api, first_id, ACKNOWLEDGED)

    order = api.update(first_id, dict(SHIP, shipDate="2099-12-03")).json()

    assert datetime.fromisoformat(order["shipment"]["shipDate"]) == datetime(
        2099, 12, 3, tzinfo=UTC
    )


def test_date_only_ship_date_breaks_orders_bought_the_same_day(api, emulator):
    # An order placed after midnight and shipped "today" by date alone looks shipped before
    # it was bought; the contract answers 400.
    candidates = [
        o
        for o in emulator.all_orders()
        if datetime.fromisoformat(o["orderDate"]).astimezone(UTC).time() != dt_time(0)
    ]
    order = candidates[0]
    move_to(api, order["id"], ACKNOWLEDGED)
    order_day = datetime.fromisoformat(order["orderDate"]).astimezone(UTC).date().isoformat()

    answer = api.update(order["id"], dict(SHIP, shipDate=order_day))

    assert_error(answer, 400)
    same_time = api.update(order["id"], dict(SHIP, shipDate=order["orderDate"]))
    assert same_time.status_code == 200


def test_status_update_of_unknown_order_answers_404(api):
    assert_error(api.update("d" * 32, SHIP), 404)


# Marketplace cancellations.


@pytest.mark.parametrize("status", [NEW, ACKNOWLEDGED])
def test_upstream_cancel_of_an_open_order(api, first_id, emulator, status):
    move_to(api, first_id, status)

    emulator.cancel_upstream(first_id)

    order = api.get(first_id).json()
    assert order["status"] == CANCELLED
    assert order["cancelledAt"] == order["modifiedAt"]
    assert first_id not in {o["id"] for o in api.list(status=status, pageSize=250).json()["orders"]}


def test_upstream_cancel_of_a_shipped_order_is_refused(api, first_id, emulator):
    move_to(api, first_id, SHIPPED)

    with pytest.raises(ValueError, match="SHIPPED"):
        emulator.cancel_upstream(first_id)


def test_upstream_cancel_fault_cancels_after_list_calls(emulator):
    emulator.faults = Faults(upstream_cancel_rate=1.0)
    api = Api(emulator)

    first = api.list(status=NEW, pageSize=250).json()
    second = api.list(status=NEW, pageSize=250).json()

    assert first["totalCount"] == 60
    assert second["totalCount"] == 59
    cancelled = emulator.all_orders(CANCELLED)
    assert len(cancelled) == 2
    assert all(o["cancelledAt"] for o in cancelled)


# Errors in general.


@pytest.mark.parametrize(
    "method, resource",
    [
        pytest.param("GET", "/nothing", id="unknown resource"),
        pytest.param("GET", contract.ORDERS_PATH + "/", id="trailing slash"),
        pytest.param("DELETE", contract.ORDERS_PATH, id="DELETE orders"),
        pytest.param("POST", contract.ORDERS_PATH, id="POST orders"),
        pytest.param("GET", contract.ACKNOWLEDGE_PATH.format(order_id="a" * 32), id="GET ack"),
    ],
)
def test_unknown_resources_and_methods_answer_json(api, method, resource):
    answer = api.call(method, resource)

    assert answer.status_code in (404, 405)
    assert_error(answer, answer.status_code)


def test_paths_outside_the_api_answer_404_json(emulator):
    assert_error(requests.get(emulator.url + "/v3/orders"), 404)
    assert_error(requests.post(emulator.url + contract.AUTHORIZATION_PATH), 405)


# Money.


def test_money_is_written_with_exactly_the_currency_minor_digits():
    with Emulator(orders=400, seed=3, rate_burst=0) as emulator:
        api = Api(emulator)
        texts = [api.list(page=page, pageSize=250).text for page in (1, 2)]

    # Keep every number's literal text, to see the digits as written on the wire.
    literal = {"parse_float": lambda text: ("number", text), "parse_int": lambda t: ("number", t)}
    orders = [o for text in texts for o in json.loads(text, **literal)["orders"]]
    written = {}
    for order in orders:
        digits = contract.minor_digits(order["currency"])
        pattern = re.compile(r"\d+" if digits == 0 else rf"\d+\.\d{{{digits}}}")
        amounts = [order[name] for name in contract.ORDER_MONEY_FIELDS] + [
            item[name] for item in order["items"] for name in contract.ITEM_MONEY_FIELDS
        ]
        for _, text in amounts:
            assert pattern.fullmatch(text), (order["currency"], text)
        written.setdefault(order["currency"], order["orderTotal"][1])
    assert {"USD", "JPY", "KWD"} <= set(written)
    assert "." not in written["JPY"] and len(written["KWD"].split(".")[1]) == 3


def test_money_round_trips_as_exact_decimals():
    with Emulator(orders=300, seed=3, rate_burst=0) as emulator:
        api = Api(emulator)
        listed = []
        for page in (1, 2):
            listed += json.loads(
                api.list(page=page, pageSize=250).text, parse_float=Decimal, parse_int=Decimal
            )["orders"]
        stored = {o["id"]: o for o in emulator.all_orders()}

    mismatched = 0
    for order in listed:
        digits = contract.minor_digits(order["currency"])
        expected = stored[order["id"]]
        for name in contract.ORDER_MONEY_FIELDS:
            assert order[name].as_tuple().exponent == -digits
            assert order[name] == expected[name]
            assert str(order[name]) == str(expected[name])
        for item, expected_item in zip(order["items"], expected["items"], strict=True):
            for name in contract.ITEM_MONEY_FIELDS:
                assert item[name].as_tuple().exponent == -digits
                assert str(item[name]) == str(expected_item[name])
        subtotal = sum(i["quantity"] * i["unitPrice"] for i in order["items"])
        total = subtotal + order["shippingTotal"] + order["taxTotal"] - order["discountTotal"]
        mismatched += (order["subtotal"], order["orderTotal"]) != (subtotal, total)
    # Marketplace rounding breaks the sums on a few percent of orders, never on most.
    assert 0 < mismatched < len(listed) * 0.1


# The rate limit.


class BucketClock:
    """Stands in for the rate limit's monotonic clock; moves only when told to."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def bucket_clock(monkeypatch) -> BucketClock:
    clock = BucketClock()
    monkeypatch.setattr(emulator_store, "_monotonic", clock)
    return clock


def test_full_bucket_answers_429_and_refused_calls_do_not_enter_it(bucket_clock):
    with Emulator(orders=5, rate_burst=3, rate_per_second=5.0) as emulator:
        api = Api(emulator)  # the authorization is the first call in the bucket
        admitted = [api.list().status_code for _ in range(2)]
        refused = [api.list().status_code for _ in range(20)]
        # One call drains in 0.2 s: had the refused calls entered, the bucket would hold 23.
        bucket_clock.now += 0.2
        after_one_drained = api.list()
        full_again = api.list()

        assert admitted == [200, 200]
        assert refused == [429] * 20
        assert after_one_drained.status_code == 200
        assert_error(full_again, 429)
        assert emulator.stats.rate_limited == emulator.stats.responses[429] == 21


def test_bucket_drains_continuously(bucket_clock):
    with Emulator(rate_burst=4, rate_per_second=2.0) as emulator:
        url = emulator.url + contract.AUTHORIZATION_PATH
        assert {requests.get(url).status_code for _ in range(4)} == {401}
        bucket_clock.now += 1.0  # two calls drained

        statuses = [requests.get(url).status_code for _ in range(3)]

    assert statuses == [401, 401, 429]


def test_authorization_calls_count_against_the_bucket(bucket_clock):
    with Emulator(rate_burst=2, rate_per_second=1.0) as emulator:
        url = emulator.url + contract.AUTHORIZATION_PATH
        params = {contract.CONSUMER_KEY_PARAM: emulator.consumer_key}

        statuses = [requests.get(url, params=params).status_code for _ in range(3)]

        assert statuses == [200, 200, 429]
        assert emulator.stats.authorizations == 2


def test_rate_burst_zero_turns_the_limit_off(api):
    assert {api.list(pageSize=1).status_code for _ in range(80)} == {200}


@pytest.mark.parametrize(
    "mode, expected",
    [
        pytest.param("absent", {None}, id="absent"),
        pytest.param("zero", {"0"}, id="zero"),
        pytest.param("positive", {"1"}, id="positive"),
    ],
)
def test_retry_after_modes_on_429_and_503(bucket_clock, mode, expected):
    with Emulator(rate_burst=1, rate_per_second=5.0, faults=Faults(retry_after=mode)) as emulator:
        url = emulator.url + contract.AUTHORIZATION_PATH
        requests.get(url)
        throttled = requests.get(url)
    faults = Faults(retry_after=mode, transient_rate=1.0)
    with Emulator(rate_burst=0, seed=1, faults=faults) as emulator:
        url = emulator.url + contract.AUTHORIZATION_PATH
        failures = [requests.get(url) for _ in range(30)]

    assert throttled.status_code == 429
    assert {throttled.headers.get(contract.RETRY_AFTER_HEADER)} == expected
    unavailable = [f for f in failures if f.status_code == 503]
    assert unavailable
    assert {f.headers.get(contract.RETRY_AFTER_HEADER) for f in unavailable} == expected
    others = [f for f in failures if f.status_code != 503]
    assert {f.status_code for f in others} == {500, 502, 504}
    assert all(contract.RETRY_AFTER_HEADER not in f.headers for f in others)
    for failure in failures:
        assert_error(failure, failure.status_code)


def test_retry_after_random_mode_mixes_all_three(emulator):
    emulator.faults = Faults(retry_after="random", transient_rate=1.0)
    url = emulator.url + contract.AUTHORIZATION_PATH

    answers = [requests.get(url) for _ in range(80)]

    values = {a.headers.get(contract.RETRY_AFTER_HEADER) for a in answers if a.status_code == 503}
    assert values == {None, "0", "1"}
    assert {a.status_code for a in answers} == {500, 502, 503, 504}


def test_retry_after_positive_counts_the_seconds_until_the_bucket_has_room(bucket_clock):
    faults = Faults(retry_after="positive")
    with Emulator(rate_burst=1, rate_per_second=0.25, faults=faults) as emulator:
        Api(emulator)
        answer = requests.get(emulator.url + contract.AUTHORIZATION_PATH)

    assert answer.status_code == 429
    assert answer.headers[contract.RETRY_AFTER_HEADER] == "4"


# Faults.


def statuses_under_transient_faults(seed: int) -> list[int]:
    with Emulator(orders=10, seed=seed, rate_burst=0) as emulator:
        api = Api(emulator)
        emulator.faults = Faults(transient_rate=0.5)
        return [api.list().status_code for _ in range(40)]


def test_transient_faults_are_reproducible_with_the_seed():
    first, again, other = (statuses_under_transient_faults(s) for s in (1, 1, 2))

    assert first == again
    assert first != other
    assert set(first) - {200} <= {500, 502, 503, 504}
    assert 8 < first.count(200) < 32


def test_transient_faults_strike_before_the_call_takes_effect(emulator, first_id):
    api = Api(emulator)
    emulator.faults = Faults(transient_rate=0.6)

    statuses = []
    while not statuses or statuses[-1] != 200:
        statuses.append(api.acknowledge(first_id, "SO-9").status_code)
        if statuses[-1] != 200:
            assert emulator.order(first_id)["status"] == NEW

    assert emulator.stats.transient == len(statuses) - 1
    assert emulator.order(first_id)["sellerOrderNumber"] == "SO-9"


def test_dropped_connections_change_nothing(emulator, first_id):
    api = Api(emulator)
    emulator.faults = Faults(drop_rate=1.0)

    with pytest.raises(requests.ConnectionError):
        api.acknowledge(first_id, "SO-9")

    assert emulator.order(first_id)["status"] == NEW
    assert emulator.stats.dropped == 1
    emulator.faults = Faults()
    assert api.acknowledge(first_id, "SO-9").status_code == 200


def test_drop_faults_are_reproducible_with_the_seed():
    def outcomes(seed: int) -> list[str]:
        with Emulator(seed=seed, rate_burst=0, faults=Faults(drop_rate=0.4)) as emulator:
            url = emulator.url + contract.AUTHORIZATION_PATH
            results = []
            for _ in range(25):
                try:
                    results.append(str(requests.get(url).status_code))
                except requests.ConnectionError:
                    results.append("dropped")
            return results

    first = outcomes(4)
    assert first == outcomes(4)
    assert {"dropped", "401"} == set(first)


def test_latency_delays_every_call(emulator):
    api = Api(emulator)
    emulator.faults = Faults(latency=0.2)

    started = time.monotonic()
    api.list(pageSize=1)

    assert time.monotonic() - started >= 0.2


def test_faults_refuse_impossible_settings():
    with pytest.raises(ValueError):
        Faults(transient_rate=1.5)
    with pytest.raises(ValueError):
        Faults(retry_after="later")
    with pytest.raises(ValueError):
        Faults(latency=-1)


def test_stats_count_calls_by_kind(api, first_id):
    api.emulator.reset_stats()

    api.list()
    api.acknowledge(first_id, "SO-1")
    api.acknowledge(first_id, "SO-1")
    api.update(first_id, SHIP)
    api.get("0" * 32)
    stats = api.emulator.stats

    assert stats.requests == 5
    assert stats.responses == {200: 4, 404: 1}
    assert stats.list_calls == 1
    assert stats.acknowledge_calls == {first_id: 2}
    assert stats.status_update_calls == {first_id: 1}


# The generator.


def comparable(orders: list[dict]) -> list[dict]:
    """Orders without the fields that depend on the clock."""
    clock = {"orderDate", "importedAt", "modifiedAt"}
    return [{k: v for k, v in o.items() if k not in clock} for o in orders]


def test_generator_is_reproducible_with_the_seed():
    assert comparable(Emulator(orders=50, seed=9).all_orders()) == comparable(
        Emulator(orders=50, seed=9).all_orders()
    )
    assert comparable(Emulator(orders=50, seed=9).all_orders()) != comparable(
        Emulator(orders=50, seed=10).all_orders()
    )


def test_orders_use_the_contract_field_names_in_order(emulator):
    api = Api(emulator)
    shipped_id = emulator.all_orders()[0]["id"]
    move_to(api, shipped_id, SHIPPED)

    for order in api.list(pageSize=250).json()["orders"]:
        assert tuple(order)[: len(contract.ORDER_FIELDS)] == contract.ORDER_FIELDS
        assert tuple(order["customer"])[:3] == contract.CUSTOMER_FIELDS
        address_fields = len(contract.ADDRESS_FIELDS)
        assert tuple(order["shippingAddress"])[:address_fields] == contract.ADDRESS_FIELDS
        for item in order["items"]:
            assert tuple(item)[: len(contract.ITEM_FIELDS)] == contract.ITEM_FIELDS
    assert tuple(api.get(shipped_id).json()["shipment"]) == contract.SHIPMENT_FIELDS


def walk(value, path=()):
    """Every (path, value) in a JSON-shaped value, containers included."""
    yield path, value
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from walk(inner, (*path, key))
    elif isinstance(value, list):
        for inner in value:
            yield from walk(inner, (*path, "[]"))


def test_generated_orders_are_realistic_and_awkward():
    emulator = Emulator(orders=1500, seed=21)
    orders = emulator.all_orders()
    today = datetime.now(UTC).date()

    ids = [o["id"] for o in orders]
    item_ids = [i["itemId"] for o in orders for i in o["items"]]
    assert all(TOKEN.fullmatch(i) for i in ids) and len(set(ids)) == len(ids)
    assert len(set(item_ids)) == len(item_ids)
    assert {len(o["items"]) for o in orders} <= set(range(1, 21))
    assert max(len(o["items"]) for o in orders) >= 6
    assert {o["marketplace"] for o in orders} == {"Amazon", "Walmart", "eBay", "Google", "Target+"}
    currencies = [o["currency"] for o in orders]
    assert currencies.count("USD") > len(orders) * 0.6
    assert {"JPY", "KWD", "EUR", "GBP", "CAD"} <= set(currencies)
    for order in orders:
        assert datetime.fromisoformat(order["orderDate"]) < datetime.fromisoformat(
            order["importedAt"]
        )
        assert order["status"] == NEW and order["modifiedAt"] == order["importedAt"]
    assert any(
        datetime.fromisoformat(o["orderDate"]).astimezone(UTC).date() == today for o in orders
    ) or (datetime.now(UTC).hour == 0)

    values = [(path, value) for order in orders for path, value in walk(order)]
    nulls = {path[-1] for path, value in values if value is None}
    assert {
        "billingAddress",
        "email",
        "phone",
        "company",
        "address2",
        "shippingMethod",
        "paymentMethod",
        "marketplaceItemId",
    } <= nulls
    texts = [value for _, value in values if isinstance(value, str)]
    for needle in ('"', ",", "\n", "é", "渋谷", "🎁", "'"):
        assert any(needle in text for text in texts), needle
    known = {
        (): set(contract.ORDER_FIELDS),
        ("customer",): set(contract.CUSTOMER_FIELDS),
        ("shippingAddress",): set(contract.ADDRESS_FIELDS),
        ("items", "[]"): set(contract.ITEM_FIELDS),
    }
    for level, names in known.items():
        extra = {k for path, v in values if path == level and isinstance(v, dict) for k in v}
        assert extra - names, f"no unknown field at {level}"


def test_large_order_sets_list_quickly():
    emulator = Emulator(orders=20_000, seed=2, rate_burst=0)
    with emulator:
        api = Api(emulator)
        started = time.monotonic()
        last = api.list(page=80, pageSize=250, status=NEW).json()
        filtered = api.list(page=80, pageSize=250, modifiedSince="2000-01-01T00:00:00Z").json()
        elapsed = time.monotonic() - started

    assert len(last["orders"]) == len(filtered["orders"]) == 250
    assert last["totalCount"] == 20_000
    assert elapsed < 2.0


# The command line.


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param(
            '"GET /v1/3f9a0000000000000000000000000000/orders?page=2 HTTP/1.1" 200',
            '"GET /v1/***/orders?page=2 HTTP/1.1" 200',
            id="v1 token",
        ),
        pytest.param(
            '"GET /v1/authorization?consumerKey=abc-123&x=1 HTTP/1.1" 200',
            '"GET /v1/authorization?consumerKey=***&x=1 HTTP/1.1" 200',
            id="consumer key",
        ),
        pytest.param("GET /v2/orders HTTP/1.1", "GET /v2/orders HTTP/1.1", id="v2 untouched"),
    ],
)
def test_request_lines_are_redacted(text, expected):
    assert redact(text) == expected


@pytest.mark.timeout(60)
def test_command_line_prints_key_and_url_then_serves_until_sigterm():
    process = subprocess.Popen(
        [sys.executable, "-m", "gdf_pipeline.emulator", "--port", "0", "--orders", "5"]
        + ["--seed", "3", "--rate-burst", "0", "--log-requests"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        key_line = process.stdout.readline().strip()
        url_line = process.stdout.readline().strip()
        assert key_line.startswith("GDF_CONSUMER_KEY=")
        assert url_line.startswith("GDF_API_URL=http://127.0.0.1:")
        key, url = key_line.split("=", 1)[1], url_line.split("=", 1)[1]
        token = requests.get(
            url + contract.AUTHORIZATION_PATH, params={contract.CONSUMER_KEY_PARAM: key}
        ).json()[contract.TOKEN_FIELD]
        listed = requests.get(url + contract.V1_PREFIX.format(token=token) + "/orders").json()
        assert listed["totalCount"] == 5
        assert key == Emulator(seed=3).consumer_key
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=20)

    assert process.returncode == 0
    assert stdout.count("GDF_CONSUMER_KEY=") == 0  # printed once, read above
    assert "/v1/***/orders" in stderr
    assert token not in stderr and key not in stderr
