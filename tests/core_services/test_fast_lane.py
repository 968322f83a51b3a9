from typing import Annotated, Any

from fastapi import FastAPI, Header
from fastapi.testclient import TestClient
from pydantic import BaseModel
from starlette.responses import JSONResponse, Response
from starlette.types import Scope

from core_services.fast_lane import add_fast_lane


class Body(BaseModel):
    amount: int


def app_with_lane(take: bool = True) -> FastAPI:
    app = FastAPI()

    @app.post("/things")
    async def general(body: Body, key: Annotated[str, Header(alias="Idempotency-Key")]) -> Any:
        return {"by": "fastapi", "amount": body.amount, "key": key}

    @app.get("/things/{thing_id}")
    async def read(thing_id: str) -> Any:
        return {"by": "fastapi", "id": thing_id}

    async def lane(scope: Scope, headers: dict[bytes, str], document: Any) -> Response | None:
        if not take:
            return None
        return JSONResponse({"by": "lane", "document": document, "key": headers[b"idempotency-key"]})

    async def read_lane(scope: Scope, headers: dict[bytes, str], _document: Any) -> Response | None:
        return JSONResponse({"by": "lane", "id": scope["path_params"]["thing_id"]})

    add_fast_lane(app, "POST", "/things", (b"idempotency-key",), lane)
    add_fast_lane(app, "GET", "/things/{thing_id}", (b"authorization",), read_lane, json_body=False)
    return app


def test_a_well_formed_request_is_answered_by_the_lane() -> None:
    response = TestClient(app_with_lane()).post("/things", json={"amount": 3}, headers={"Idempotency-Key": "k"})
    assert response.json() == {"by": "lane", "document": {"amount": 3}, "key": "k"}


def test_a_body_that_does_not_parse_goes_to_fastapi_which_refuses_it() -> None:
    response = TestClient(app_with_lane()).post(
        "/things", content=b"{not json", headers={"Idempotency-Key": "k", "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


def test_a_missing_header_goes_to_fastapi_which_refuses_it() -> None:
    response = TestClient(app_with_lane()).post("/things", json={"amount": 3})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]


def test_a_repeated_header_goes_to_fastapi() -> None:
    client = TestClient(app_with_lane())
    response = client.post(
        "/things",
        json={"amount": 3},
        headers=[("Idempotency-Key", "a"), ("Idempotency-Key", "b")],
    )
    assert response.json()["by"] == "fastapi"


def test_a_request_the_lane_declines_reaches_fastapi_with_its_body_replayed() -> None:
    response = TestClient(app_with_lane(take=False)).post(
        "/things", json={"amount": 7}, headers={"Idempotency-Key": "k"}
    )
    assert response.json() == {"by": "fastapi", "amount": 7, "key": "k"}


def test_a_bodiless_lane_reads_path_parameters_and_needs_its_headers() -> None:
    client = TestClient(app_with_lane())
    assert client.get("/things/t1", headers={"Authorization": "Bearer x"}).json() == {"by": "lane", "id": "t1"}
    assert client.get("/things/t1").json() == {"by": "fastapi", "id": "t1"}


def test_a_body_with_a_key_twice_goes_to_fastapi() -> None:
    response = TestClient(app_with_lane()).post(
        "/things",
        content=b'{"amount": 1, "amount": 2}',
        headers={"Idempotency-Key": "k", "Content-Type": "application/json"},
    )
    assert response.json()["by"] == "fastapi"
