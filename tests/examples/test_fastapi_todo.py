"""The FastAPI todo example (``examples/fastapi_todo``) through httpx's test client, on a
SQLite file and a PostgreSQL schema: read-your-writes and idempotent retries."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from esctl_lib import open_store
from tests.backends import backend_params, fresh_location

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fastapi_todo"
if str(EXAMPLE) not in sys.path:
    sys.path.insert(0, str(EXAMPLE))

from todo_api import create_app  # noqa: E402


@pytest.fixture(params=backend_params(["sqlite", "postgres"]))
def client_and_url(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[TestClient, str, str | None]]:
    with fresh_location(request.param, tmp_path) as location:
        app = create_app(location.url, schema=location.schema)
        with TestClient(app) as client:
            yield client, location.url, location.schema


def _event_types(url: str, schema: str | None) -> list[str]:
    with open_store(url, schema=schema) as store:
        return [e.type for e in store.read_page(0).events]


def test_a_client_sees_the_todo_it_just_added(
    client_and_url: tuple[TestClient, str, str | None],
) -> None:
    client, _, _ = client_and_url
    added = client.post("/todos", json={"title": "Buy milk", "due_date": "2030-01-31"})
    assert added.status_code == 201, added.text
    body = added.json()
    listed = client.get("/todos", params={"after": body["position"]})
    assert listed.status_code == 200
    assert listed.json() == [{"todo_id": body["todo_id"], "title": "Buy milk",
                              "description": None, "due_date": "2030-01-31"}]


def test_a_retried_post_with_the_same_key_appends_once_and_gets_the_first_answer(
    client_and_url: tuple[TestClient, str, str | None],
) -> None:
    client, url, schema = client_and_url
    headers = {"Idempotency-Key": "req-42"}
    first = client.post("/todos", json={"title": "Call Bob"}, headers=headers)
    again = client.post("/todos", json={"title": "Call Bob"}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replay"] == "true"
    other = client.post("/todos", json={"title": "Call Bob"}, headers={"Idempotency-Key": "x"})
    assert other.json()["todo_id"] != first.json()["todo_id"]
    assert _event_types(url, schema) == ["todo_added", "todo_added"]
    listed = client.get("/todos", params={"after": other.json()["position"]}).json()
    assert sorted(t["todo_id"] for t in listed) == sorted(
        [first.json()["todo_id"], other.json()["todo_id"]])


def test_concurrent_retries_of_one_request_append_once(
    client_and_url: tuple[TestClient, str, str | None],
) -> None:
    client, url, schema = client_and_url
    clients = 6
    start = threading.Barrier(clients)
    answers: list[tuple[int, str]] = []

    def post() -> None:
        start.wait()
        response = client.post("/todos", json={"title": "Once"},
                               headers={"Idempotency-Key": "same"})
        answers.append((response.status_code, response.text))

    threads = [threading.Thread(target=post) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == clients
    assert {code for code, _ in answers} == {201}
    assert len({text for _, text in answers}) == 1
    assert _event_types(url, schema) == ["todo_added"]


def test_completing_twice_with_one_key_completes_once_and_empties_the_list(
    client_and_url: tuple[TestClient, str, str | None],
) -> None:
    client, url, schema = client_and_url
    todo_id = client.post("/todos", json={"title": "Write"}).json()["todo_id"]
    headers = {"Idempotency-Key": "done-1"}
    done = client.post(f"/todos/{todo_id}/complete", json={"completed_on": "2030-02-01"},
                       headers=headers)
    again = client.post(f"/todos/{todo_id}/complete", json={"completed_on": "2030-02-01"},
                        headers=headers)
    assert done.status_code == again.status_code == 200
    assert again.json() == done.json()
    assert _event_types(url, schema) == ["todo_added", "todo_completed"]
    assert client.get("/todos", params={"after": done.json()["position"]}).json() == []
    refused = client.post(f"/todos/{todo_id}/complete", json={"completed_on": "2030-02-02"})
    assert refused.status_code == 409


def test_bad_requests_are_refused_without_writing(
    client_and_url: tuple[TestClient, str, str | None],
) -> None:
    client, url, schema = client_and_url
    assert client.post("/todos", json={"title": ""}).status_code == 422
    missing = "00000000-0000-4000-8000-000000000000"
    assert client.post(f"/todos/{missing}/complete",
                       json={"completed_on": "2030-01-01"}).status_code == 404
    assert _event_types(url, schema) == []
