"""OEHU: the JSON importer and the requests client against a local server of the OEHU shape."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest

from enerdatx.errors import OEHUAPIError, ReadingsFormatError
from enerdatx.meter import OEHUClient, read_oehu

T0_MS = 1_546_300_800_000  # 2019-01-01T00:00:00Z


def oehu_reading(i: int, device: str = "pi-7") -> dict[str, Any]:
    t1, t2 = 1000 + 0.1 * i, 2000 + 0.2 * i
    return {"deviceId": device, "metadata": {"lastUpdate": T0_MS + i * 600_000},
            "electricityReceived": {"total": round(t1 + t2, 3), "tariff1": round(t1, 3), "tariff2": round(t2, 3)},
            "electricityDelivered": {"total": 5.0, "tariff1": 2.0, "tariff2": 3.0},
            "gasReceived": 300 + 0.05 * i}


class FakeOEHU:
    """A local OEHU-shaped API; ``script`` can make the next requests fail."""

    def __init__(self, readings: list[dict[str, Any]]) -> None:
        self.readings = readings
        self.requests: list[str] = []
        self.script: list[Any] = []  # status codes, "garbage" or "hang" for the next requests
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                fake.requests.append(self.path)
                action = fake.script.pop(0) if fake.script else None
                if action == "hang":
                    fake.release.wait(10)
                    return
                if isinstance(action, int):
                    return self._send(action, b'{"error": "scripted"}')
                url = urlparse(self.path)
                query = parse_qs(url.query)
                if url.path == "/devices":
                    body: Any = sorted({r["deviceId"] for r in fake.readings})
                elif url.path == "/transactions":
                    mine = [r for r in fake.readings if r["deviceId"] == query["deviceId"][0]]
                    offset = int(query.get("offset", ["0"])[0])
                    body = mine[offset: offset + int(query["limit"][0])]
                else:
                    return self._send(404, b'{"error": "no such endpoint"}')
                self._send(200, b"{not json" if action == "garbage" else json.dumps(body).encode())

            def _send(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeOEHU:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api() -> Iterator[FakeOEHU]:
    with FakeOEHU([oehu_reading(i) for i in range(10)] + [oehu_reading(i, "pi-8") for i in range(3)]) as fake:
        yield fake


def test_json_file_to_canonical_readings(tmp_path) -> None:
    path = tmp_path / "oehu.json"
    path.write_text(json.dumps({"transactions": [oehu_reading(i) for i in (2, 0, 1)]}))
    frame = read_oehu(path)
    assert list(frame.index) == [pd.Timestamp("2019-01-01T00:00:00Z") + pd.Timedelta(minutes=10 * i)
                                 for i in range(3)]
    assert frame["import_t2_kwh"].tolist() == pytest.approx([2000, 2000.2, 2000.4])
    assert frame["export_kwh"].tolist() == [5.0] * 3
    assert frame["gas_m3"].iloc[2] == pytest.approx(300.1)
    assert (frame["gas_timestamp"] == frame.index).all()
    assert set(frame["source"]) == {"oehu"} and "pi-7" not in frame["meter_id"].iloc[0]


MALFORMED = [
    ("{not json", "not JSON"),
    ('{"readings": []}', "must be a list"),
    ('[{"deviceId": "x"}]', "#0 is malformed"),
    ('[{"deviceId": "x", "metadata": {"lastUpdate": "yesterday"}}]', "epoch milliseconds"),
    ('[{"deviceId": "x", "metadata": {"lastUpdate": 1546300800000}, "gasReceived": -1}]', "non-negative"),
    ("[1]", "#0 is not an object"),
    ('[{"deviceId": "x", "metadata": {"lastUpdate": 1e13}}]', "timestamps must lie between"),
]


@pytest.mark.parametrize(("document", "message"), MALFORMED)
def test_malformed_json_is_a_format_error(document: str, message: str) -> None:
    with pytest.raises(ReadingsFormatError, match=message):
        read_oehu(document)


@pytest.mark.parametrize(("document", "message"), MALFORMED)
def test_a_malformed_oehu_file_is_named_in_its_refusal(tmp_path, document: str, message: str) -> None:
    # Only a document that was no JSON named its file: "OEHU reading #0 is not an object" named none.
    path = tmp_path / "oehu.json"
    path.write_text(document)
    with pytest.raises(ReadingsFormatError, match=f"^{re.escape(str(path))}: .*{message}"):
        read_oehu(path)


@pytest.mark.parametrize("document", ['[{"deviceId": "x"}]', '[{"metadata": {"lastUpdate": 1546300800000}}]',
                                      '[{"deviceId": "x", "metadata": []}]'])
def test_a_reading_without_its_fields_says_which_it_needs(document: str) -> None:
    # The KeyError's bare name was the whole reason: "OEHU reading #0 is malformed: 'metadata'".
    with pytest.raises(ReadingsFormatError, match=r"^OEHU reading #0 is malformed: a reading has a deviceId and a "
                                                  r"metadata\.lastUpdate$"):
        read_oehu(document)


def test_an_empty_file_is_named_and_said_to_be_empty(tmp_path) -> None:
    path = tmp_path / "empty.json"
    path.write_bytes(b"")
    with pytest.raises(ReadingsFormatError, match=r"empty\.json: the file is empty, not OEHU data"):
        read_oehu(path)


@pytest.mark.parametrize("document", [b"garbage\xff not json", b"[\xff]", b"\xff\xfe", b"{nope"])
def test_garbage_is_refused_in_readable_text(tmp_path, document: bytes) -> None:
    # yajl2_c reports non-UTF-8 input in bytes: the message showed b'lexical error: ...\n ... \xff'.
    path = tmp_path / "garbage.json"
    path.write_bytes(document)
    for source in (document, path):
        with pytest.raises(ReadingsFormatError) as caught:
            read_oehu(source)
        message = str(caught.value)
        prefix = f"{path}: OEHU data is not JSON: " if source == path else "OEHU data is not JSON: "
        assert message.startswith(prefix) and len(message) > len(prefix)
        assert "b'" not in message and "\\x" not in message and "\n" not in message, message


def test_several_devices_need_a_choice() -> None:
    items = [oehu_reading(0, "a"), oehu_reading(1, "b")]
    with pytest.raises(ReadingsFormatError, match="2 devices"):
        read_oehu(items)
    assert len(read_oehu(items, device_id="b")) == 1


def test_client_pages_by_limit(api: FakeOEHU) -> None:
    with OEHUClient(api.url, page_size=3) as client:
        assert client.devices() == ["pi-7", "pi-8"]
        frame = client.readings("pi-7")
        assert len(frame) == 10 and frame.index.is_monotonic_increasing
        assert len(client.transactions("pi-7", limit=5)) == 5
    pages = [r for r in api.requests if r.startswith("/transactions") and "limit=3" in r]
    assert [parse_qs(urlparse(r).query)["offset"][0] for r in pages[:4]] == ["0", "3", "6", "9"]


def test_client_retries_server_errors_with_backoff(api: FakeOEHU) -> None:
    api.script = [503, 502]
    with OEHUClient(api.url, retries=3, backoff=0.01) as client:
        assert client.devices() == ["pi-7", "pi-8"]
    assert len(api.requests) == 3


def test_client_gives_up_after_its_retries(api: FakeOEHU) -> None:
    api.script = [500, 500, 500]
    with OEHUClient(api.url, retries=2, backoff=0.01) as client, pytest.raises(OEHUAPIError) as info:
        client.devices()
    assert info.value.status == 500 and "HTTP 500" in str(info.value)


def test_client_reports_http_errors_and_bad_json(api: FakeOEHU) -> None:
    with OEHUClient(api.url + "/nope", retries=0) as client, pytest.raises(OEHUAPIError, match="HTTP 404"):
        client.devices()
    api.script = ["garbage"]
    with OEHUClient(api.url, retries=0) as client, pytest.raises(OEHUAPIError, match="malformed JSON"):
        client.readings("pi-7")


def test_client_times_out(api: FakeOEHU) -> None:
    api.script = ["hang"]
    with OEHUClient(api.url, timeout=0.2, retries=0) as client, pytest.raises(OEHUAPIError, match="request failed"):
        client.devices()


def test_client_cannot_connect() -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    with OEHUClient(f"http://127.0.0.1:{port}", timeout=1, retries=1, backoff=0.01) as client:
        with pytest.raises(OEHUAPIError, match="request failed"):
            client.devices()


def test_server_that_ignores_offset_is_detected() -> None:
    with FakeOEHU([oehu_reading(i) for i in range(10)]) as fake:
        original = fake.server.RequestHandlerClass.do_GET

        def ignore_offset(handler: Any) -> None:
            handler.path = handler.path.replace("offset=", "ignored=")
            original(handler)

        fake.server.RequestHandlerClass.do_GET = ignore_offset
        with OEHUClient(fake.url, page_size=4) as client, pytest.raises(OEHUAPIError, match="same page twice"):
            client.transactions("pi-7")


def test_an_oehu_file_is_streamed_in_less_memory_than_the_whole_document(tmp_path):
    from enerdatx.bench.entry import oehu_memory_figures

    figures = oehu_memory_figures(tmp_path, readings=5000)
    assert figures["same_rows"] and figures["readings"] == 5000
    # The document itself is never held: the peak stays well below json.loads of it.
    assert figures["streamed_peak_mib"] < 0.75 * figures["whole_document_peak_mib"]


def test_deep_huge_and_trailing_oehu_documents_are_typed_errors():
    from enerdatx.errors import ReadingsFormatError

    for document, message in (
        ("[" * 100_000 + "]" * 100_000, "nested deeper"),
        ('[{"deviceId": "a", "metadata": {"lastUpdate": ' + "9" * 100_000 + "}}]", "OEHU data"),
        ('[{"deviceId": "a", "metadata": {"lastUpdate": 1560000000000}}] trailing', "not JSON"),
        ('{"other": [1, {"x": 2}]}', "must be a list"),
        ("[1", "reading #0 is not an object"),
    ):
        with pytest.raises(ReadingsFormatError, match=message):
            read_oehu(document.encode())
    assert len(read_oehu(b'{"x": [1], "transactions": [{"deviceId": "a", "metadata": {"lastUpdate": 1560000000000}}]}')) == 1


def test_a_utf8_byte_order_mark_is_read_past(tmp_path) -> None:
    # Windows editors write one; ijson refused the file as "lexical error: invalid char in json text".
    document = b"\xef\xbb\xbf" + json.dumps([oehu_reading(i) for i in range(3)]).encode()
    path = tmp_path / "bom.json"
    path.write_bytes(document)
    for source in (document, path):
        assert len(read_oehu(source)) == 3
