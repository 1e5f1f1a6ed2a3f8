"""The meter-data panel reads every source kind into a plot and a data set, and explains bad input."""

from __future__ import annotations

import json

import pytest

from enerdatx.meter import read_dsmr, render_telegrams, synthetic_household, write_csv
from enerdatx.widgets import MeterPanel


async def test_synthetic_household_is_loaded_plotted_and_cut():
    panel = MeterPanel()
    panel.seed.value, panel.days.value, panel.resolution.value = 4, 2, "1h"
    dataset = await panel.load()
    assert panel.error == "", panel.error
    assert dataset.descriptor["n_readings"] == 48
    assert dataset.descriptor["location"] == "2628"
    assert panel.readings.equals(synthetic_household(seed=4, days=2, household_type="family", location="2628"))
    assert panel.info.startswith(f"{len(panel.readings)} readings; data set of 48 intervals")
    assert panel.revision == 1


def test_file_fields_show_only_for_file_sources():
    panel = MeterPanel()
    assert panel.path.layout.display == "none"
    panel.source.value = "csv"
    assert panel.path.layout.display is None
    assert panel._synthetic_box.layout.display == "none"


@pytest.mark.parametrize("source", ["dsmr", "csv", "oehu"])
async def test_files_of_each_kind_are_read(tmp_path, source):
    readings = synthetic_household(seed=2, days=1, resolution="1h")
    path = tmp_path / f"readings.{source}"
    if source == "dsmr":
        path.write_text("".join(render_telegrams(readings)))
    elif source == "csv":
        write_csv(readings, path)
    else:
        path.write_text(json.dumps([
            {"deviceId": "pi-1", "metadata": {"lastUpdate": int(time.timestamp() * 1000)},
             "electricityReceived": {"total": row.import_kwh, "tariff1": row.import_t1_kwh, "tariff2": row.import_t2_kwh},
             "electricityDelivered": {"total": 0, "tariff1": 0, "tariff2": 0}}
            for time, row in readings.iterrows()
        ]))  # fmt: skip
    panel = MeterPanel()
    panel.source.value, panel.path.value = source, str(path)
    dataset = await panel.load()
    assert panel.error == "", panel.error
    assert len(panel.readings) == len(readings)
    assert dataset.descriptor["n_readings"] == 24


async def test_a_dsmr_socket_is_read(tmp_path):
    import asyncio

    telegrams = "".join(render_telegrams(synthetic_household(seed=5, days=1, resolution="1h")))

    async def serve(reader, writer):
        writer.write(telegrams.encode("latin-1"))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        panel = MeterPanel()
        panel.source.value, panel.path.value = "dsmr-tcp", f"127.0.0.1:{port}"
        await panel.load()
    assert panel.error == "", panel.error
    assert len(panel.readings) == len(read_dsmr(telegrams))


@pytest.mark.parametrize(
    ("source", "path", "message"),
    [("csv", "", "give a file path to read from"), ("oehu", "/nonexistent/x.json", "/nonexistent/x.json: no such file"),
     # the idna codec's errors were shown bare: "encoding with 'idna' codec failed (UnicodeError: ...)"
     ("dsmr-tcp", "\udcff:2000", "cannot connect to 'tcp://\\udcff:2000': '\\udcff' is not a host name"),
     ("dsmr-tcp", "a..b:2000", "cannot connect to 'tcp://a..b:2000': 'a..b' is not a host name"),
     # the address as typed: it said "expected tcp://HOST:PORT ..., got 'tcp://localhost'"
     ("dsmr-tcp", "localhost", "expected HOST:PORT with a port from 1 to 65535, got 'localhost'"),
     ("dsmr-tcp", "meter:99999", "expected HOST:PORT with a port from 1 to 65535, got 'meter:99999'")],
)
async def test_bad_input_is_a_message(source, path, message):
    panel = MeterPanel()
    panel.source.value, panel.path.value = source, path
    assert await panel.load() is None
    assert panel.error == message
    assert panel.dataset is None


async def test_a_corrupt_dsmr_file_names_the_problem(tmp_path):
    telegrams = "".join(render_telegrams(synthetic_household(seed=2, days=1, resolution="1h")))
    path = tmp_path / "bad.dsmr"
    path.write_text(telegrams.replace("1-0:1.8.1(", "1-0:1.8.1(9", 1))  # breaks the first CRC
    panel = MeterPanel()
    panel.source.value, panel.path.value = "dsmr", str(path)
    assert await panel.load() is None
    assert "telegram #0" in panel.error
