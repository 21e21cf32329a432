"""The files service over REST through Envoy's transcoder: a raw-body upload (HttpBody), a
raw-bytes download, metadata, listing with filters, usage, deletion and refusals.

Starts the whole mesh on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import os
import urllib.parse
import uuid

import pytest

from services.cli.edge_client import RestClient
from tests.e2e.conftest import Account, register

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def owner(identity) -> Account:
    return register(identity, "rest-files")


@pytest.fixture(scope="module")
def stranger(identity) -> Account:
    return register(identity, "rest-stranger")


def put(rest: RestClient, account: Account, name: str, data: bytes, content_type: str):
    query = urllib.parse.urlencode({"fileName": name}, quote_via=urllib.parse.quote)
    return rest.request(
        "POST",
        f"/v1/files:upload?{query}",
        raw=data,
        headers={**account.headers, "content-type": content_type},
    )


def test_rest_upload_download_list_delete(rest: RestClient, owner: Account) -> None:
    data = os.urandom(3 * 1024 * 1024 + 5).hex().encode()  # text: RestClient decodes bodies
    stored = put(rest, owner, "prices.csv", data, "text/csv")
    assert stored.status == 200, stored.text
    file_id = stored.body["id"]
    assert stored.body["sha256"] == hashlib.sha256(data).hexdigest()
    assert (stored.body["fileName"], stored.body["contentType"]) == ("prices.csv", "text/csv")
    assert int(stored.body["sizeBytes"]) == len(data)

    body = rest.request("GET", f"/v1/files/{file_id}:download", headers=owner.headers)
    assert body.status == 200
    assert body.headers["content-type"].startswith("text/csv")
    assert body.body == data.decode()

    meta = rest.request("GET", f"/v1/files/{file_id}", headers=owner.headers)
    assert meta.status == 200 and meta.body["id"] == file_id
    query = urllib.parse.urlencode(
        {"filter": 'file_name = "*.csv"', "pageSize": 10}, quote_via=urllib.parse.quote
    )
    listed = rest.request("GET", f"/v1/files?{query}", headers=owner.headers)
    assert listed.status == 200, listed.text
    assert file_id in [f["id"] for f in listed.body["files"]]
    usage = rest.request("GET", "/v1/storage", headers=owner.headers)
    assert usage.status == 200 and int(usage.body["usedBytes"]) >= len(data)

    deleted = rest.request("DELETE", f"/v1/files/{file_id}", headers=owner.headers)
    assert deleted.status == 200, deleted.text
    gone = rest.request("GET", f"/v1/files/{file_id}", headers=owner.headers)
    assert gone.status == 404


def test_rest_ranged_download(rest: RestClient, owner: Account) -> None:
    stored = put(rest, owner, "digits.txt", b"0123456789" * 100, "text/plain")
    assert stored.status == 200, stored.text
    part = rest.request(
        "GET", f"/v1/files/{stored.body['id']}:download?offset=5&length=12", headers=owner.headers
    )
    assert (part.status, part.body) == (200, "567890123456")


def test_rest_other_tenant_is_404(rest: RestClient, owner: Account, stranger: Account) -> None:
    stored = put(rest, owner, "private.txt", b"private", "text/plain")
    file_id = stored.body["id"]
    for method, path in [
        ("GET", f"/v1/files/{file_id}"),
        ("GET", f"/v1/files/{file_id}:download"),
        ("DELETE", f"/v1/files/{file_id}"),
    ]:
        reply = rest.request(method, path, headers=stranger.headers)
        assert reply.status == 404, (method, path, reply.text)


def test_rest_sharing_outside_the_tenant_is_404_like_no_user(
    rest: RestClient, owner: Account, stranger: Account
) -> None:
    stored = put(rest, owner, "mine.txt", b"mine", "text/plain")
    file_id = stored.body["id"]
    answers = set()
    for user_id in (stranger.user_id, str(uuid.uuid4())):
        reply = rest.request(
            "POST", f"/v1/files/{file_id}:share", {"userId": user_id}, headers=owner.headers
        )
        answers.add(
            (reply.status, reply.body["code"], reply.body["message"].replace(user_id, "ID"))
        )
    assert answers == {(404, 5, "user ID not found")}  # nothing tells which one exists
    meta = rest.request("GET", f"/v1/files/{file_id}", headers=owner.headers)
    assert meta.body.get("sharedWith", []) == []


def test_rest_bad_input_is_400_naming_the_field(rest: RestClient, owner: Account) -> None:
    not_a_workbook = put(rest, owner, "model.xlsx", b"plain text", "application/octet-stream")
    assert not_a_workbook.status == 400, not_a_workbook.text
    assert "body.content_type" in not_a_workbook.text
    bad_id = rest.request("GET", "/v1/files/not-a-uuid", headers=owner.headers)
    assert bad_id.status == 400 and "file_id" in bad_id.text
    bad_filter = rest.request("GET", "/v1/files?filter=colour%3Dred", headers=owner.headers)
    assert bad_filter.status == 400 and "filter" in bad_filter.text
    no_token = rest.request("GET", f"/v1/files/{uuid.uuid4()}")
    assert no_token.status == 401
