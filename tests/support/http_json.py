"""One HTTP request with urllib, for the Python test harnesses (browser, contract,
scale-out): no dependency to install, JSON in and out, HTTP errors returned as answers
so each harness decides what is a failure."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message


@dataclass
class Answer:
    status: int
    headers: Message
    # The decoded JSON when the answer is JSON, else the raw bytes.
    body: object

    def text(self) -> str:
        if isinstance(self.body, bytes):
            return self.body.decode(errors="replace")
        return json.dumps(self.body)


def request(
    url: str,
    method: str = "GET",
    body: dict | list | None = None,
    *,
    raw: bytes | None = None,
    content_type: str | None = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> Answer:
    """`body` is sent as JSON; `raw` as it is, with `content_type`."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    sent = urllib.request.Request(url, data=data, method=method)
    sent.add_header("Accept", "application/json")
    if raw is not None and content_type:
        sent.add_header("Content-Type", content_type)
    elif body is not None:
        sent.add_header("Content-Type", "application/json")
    if token:
        sent.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        sent.add_header(name, value)
    try:
        with urllib.request.urlopen(sent, timeout=timeout) as response:
            status, payload, answer_headers = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, payload, answer_headers = error.code, error.read(), error.headers
    decoded: object = payload
    if payload and "json" in answer_headers.get("Content-Type", ""):
        decoded = json.loads(payload)
    elif not payload:
        decoded = None
    return Answer(status, answer_headers, decoded)
