"""Write DSMR P1 telegrams: the inverse of dsmr.py, for tests, sample data and benchmarks.

``render_telegram`` turns one canonical reading into the telegram a meter of the
chosen variant would print, with the CRC16 (CRC-16/ARC, the polynomial DSMR 4+
prescribes) computed over the bytes from ``/`` to ``!``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from fastcrc import crc16

from enerdatx.errors import MeterDataError

__all__ = ["VARIANTS", "WITHOUT_GAS", "crc16_arc", "dsmr_timestamp", "render_telegram", "render_telegrams"]

# The variants a meter can print, by the name dsmr.py detects them under.
VARIANTS = ("v2.2", "v3", "v4", "v5", "fluvius", "smarty", "sweden", "q3d", "iskra_ie", "eon_hungary")
# The variants whose telegrams carry no gas register (docs/readings.md): a reading's gas is left out.
WITHOUT_GAS = ("sweden", "q3d", "iskra_ie", "eon_hungary")
_CHECKSUMMED = {"v4", "v5", "fluvius", "smarty", "sweden", "eon_hungary"}
_AMSTERDAM = ZoneInfo("Europe/Amsterdam")
_DUBLIN = ZoneInfo("Europe/Dublin")


def crc16_arc(data: bytes) -> int:
    """CRC-16/ARC (poly 0x8005 reflected, init 0), the DSMR P1 telegram checksum."""
    return crc16.arc(data)


def dsmr_timestamp(ts: datetime, zone: ZoneInfo = _AMSTERDAM, *, flag: bool = True) -> str:
    """``YYMMDDhhmmssX`` in local time, X = S (summer time) or W (winter time)."""
    local = pd.Timestamp(ts).tz_convert(zone)
    text = local.strftime("%y%m%d%H%M%S")
    if not flag:
        return text
    # Not local.dst(): Europe/Dublin models winter as a negative DST, so compare with January.
    winter = pd.Timestamp(year=local.year, month=1, day=1, tz=zone).utcoffset()
    return text + ("S" if local.utcoffset() > winter else "W")


def render_telegram(reading: Mapping[str, Any], variant: str = "v5", *,
                    equipment_id: str = "4530303434303037313331363530353137",
                    gas_equipment_id: str = "4730303339303031373030343930313137") -> str:
    """One telegram of ``variant`` carrying ``reading`` (canonical column names, UTC timestamp)."""
    if variant not in VARIANTS:
        raise MeterDataError(f"unknown DSMR variant {variant!r}; known: {', '.join(VARIANTS)}")
    lines = _LINES[variant](reading, equipment_id, gas_equipment_id)
    body = "\r\n".join(lines) + "\r\n!"
    if variant in _CHECKSUMMED:
        return body + f"{crc16_arc(body.encode('ascii')):04X}\r\n"
    return body + "\r\n"


def render_telegrams(frame: pd.DataFrame, variant: str = "v5", **ids: str) -> Iterator[str]:
    """Telegrams for every row of a canonical readings frame."""
    if not isinstance(frame, pd.DataFrame):  # None failed with an AttributeError on .index
        raise MeterDataError(f"render_telegrams renders readings (a DataFrame), not {type(frame).__name__}")
    for ts, row in zip(frame.index, frame.itertuples(index=False), strict=True):
        yield render_telegram({"timestamp": ts, **row._asdict()}, variant, **ids)


def _kwh(value: Any, digits: int = 3, width: int = 10) -> str:
    return f"{_num(value):0{width}.{digits}f}*kWh"


def _kw(value_w: Any) -> str:
    return f"{_num(value_w) / 1000:06.3f}*kW"


def _num(value: Any) -> float:
    return 0.0 if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _gas_line(reading: Mapping[str, Any], channel_obis: str, zone: ZoneInfo = _AMSTERDAM) -> str:
    gas_ts = reading.get("gas_timestamp")
    if gas_ts is None or pd.isna(gas_ts):
        gas_ts = reading["timestamp"]
    return f"{channel_obis}({dsmr_timestamp(gas_ts, zone)})({_num(reading.get('gas_m3')):09.3f}*m3)"


def _has_gas(reading: Mapping[str, Any]) -> bool:
    value = reading.get("gas_m3")
    return value is not None and not pd.isna(value)


def _tariff_lines(r: Mapping[str, Any]) -> list[str]:
    return [
        f"1-0:1.8.1({_kwh(r.get('import_t1_kwh'))})",
        f"1-0:1.8.2({_kwh(r.get('import_t2_kwh'))})",
        f"1-0:2.8.1({_kwh(r.get('export_t1_kwh'))})",
        f"1-0:2.8.2({_kwh(r.get('export_t2_kwh'))})",
        f"0-0:96.14.0(000{int(_num(r.get('tariff', 2)) or 2)})",
    ]


def _power_lines(r: Mapping[str, Any]) -> list[str]:
    return [f"1-0:1.7.0({_kw(r.get('power_import_w'))})", f"1-0:2.7.0({_kw(r.get('power_export_w'))})"]


def _v2(r: Mapping[str, Any], eid: str, gid: str, *, threshold: str) -> list[str]:
    lines = ["/ISk5\\2MT382-1004", "", f"0-0:96.1.1({eid})", *_tariff_lines(r), *_power_lines(r),
             f"0-0:17.0.0({threshold})", "0-0:96.3.10(1)", "0-0:96.13.1()", "0-0:96.13.0()"]
    if _has_gas(r):
        gas_ts = r.get("gas_timestamp")
        stamp = dsmr_timestamp(r["timestamp"] if gas_ts is None or pd.isna(gas_ts) else gas_ts, flag=False)
        lines += ["0-1:24.1.0(3)", f"0-1:96.1.0({gid})",
                  f"0-1:24.3.0({stamp})(00)(60)(1)(0-1:24.2.1)(m3)",
                  f"({_num(r.get('gas_m3')):09.3f})", "0-1:24.4.0(1)"]
    return lines


def _v4(r: Mapping[str, Any], eid: str, gid: str) -> list[str]:
    lines = ["/KFM5KAIFA-METER", "", "1-3:0.2.8(42)", f"0-0:1.0.0({dsmr_timestamp(r['timestamp'])})",
             f"0-0:96.1.1({eid})", *_tariff_lines(r), *_power_lines(r),
             "0-0:96.7.21(00015)", "0-0:96.7.9(00007)", "0-0:96.13.1()", "0-0:96.13.0()"]
    if _has_gas(r):
        lines += ["0-1:24.1.0(003)", f"0-1:96.1.0({gid})", _gas_line(r, "0-1:24.2.1")]
    return lines


def _v5(r: Mapping[str, Any], eid: str, gid: str, *, extra: tuple[str, ...] = (),
        header: str = "/ISk5\\2MT382-1000", version: str = "50", gas_obis: str = "0-1:24.2.1") -> list[str]:
    lines = [header, "", f"1-3:0.2.8({version})", f"0-0:1.0.0({dsmr_timestamp(r['timestamp'])})",
             f"0-0:96.1.1({eid})", *extra, *_tariff_lines(r), *_power_lines(r),
             "0-0:96.7.21(00013)", "0-0:96.7.9(00000)", "1-0:99.97.0(0)(0-0:96.7.19)",
             "1-0:32.32.0(00000)", "1-0:32.36.0(00000)", "0-0:96.13.0()", "1-0:32.7.0(0230.0*V)",
             "1-0:31.7.0(001*A)", f"1-0:21.7.0({_kw(r.get('power_import_w'))})",
             f"1-0:22.7.0({_kw(r.get('power_export_w'))})"]
    if _has_gas(r):
        lines += ["0-1:24.1.0(003)", f"0-1:96.1.0({gid})", _gas_line(r, gas_obis)]
    return lines


def _fluvius(r: Mapping[str, Any], eid: str, gid: str) -> list[str]:
    lines = ["/FLU5\\253769484_A", "", "0-0:96.1.4(50217)", f"0-0:96.1.1({eid})",
             f"0-0:1.0.0({dsmr_timestamp(r['timestamp'])})", *_tariff_lines(r), *_power_lines(r),
             "1-0:32.7.0(229.0*V)", "1-0:31.7.0(001.48*A)", "0-0:96.3.10(1)", "0-0:17.0.0(999.9*kW)",
             "0-0:96.13.0()"]
    if _has_gas(r):  # Belgian gas: not temperature corrected, on 24.2.3
        lines += ["0-1:24.1.0(003)", f"0-1:96.1.1({gid})", "0-1:24.4.0(1)", _gas_line(r, "0-1:24.2.3")]
    return lines


def _smarty(r: Mapping[str, Any], eid: str, gid: str) -> list[str]:
    total_import = _num(r.get("import_kwh")) or _num(r.get("import_t1_kwh")) + _num(r.get("import_t2_kwh"))
    total_export = _num(r.get("export_kwh")) or _num(r.get("export_t1_kwh")) + _num(r.get("export_t2_kwh"))
    return _v5(r, eid, gid, header="/Lux5\\253833635_A", version="42",
               extra=(f"0-0:42.0.0({eid[:32]})", f"1-0:1.8.0({_kwh(total_import)})",
                      f"1-0:2.8.0({_kwh(total_export)})"))


def _totals_only(r: Mapping[str, Any]) -> tuple[float, float]:
    imp = r.get("import_kwh")
    exp = r.get("export_kwh")
    if imp is None or pd.isna(imp):
        imp = _num(r.get("import_t1_kwh")) + _num(r.get("import_t2_kwh"))
    if exp is None or pd.isna(exp):
        exp = _num(r.get("export_t1_kwh")) + _num(r.get("export_t2_kwh"))
    return float(imp), float(exp)


def _sweden(r: Mapping[str, Any], eid: str, gid: str) -> list[str]:
    imp, exp = _totals_only(r)
    return ["/ELL5\\253833635_A", "", "1-3:0.2.8(50)", f"0-0:1.0.0({dsmr_timestamp(r['timestamp'])})",
            f"1-0:1.8.0({_kwh(imp)})", f"1-0:2.8.0({_kwh(exp)})", "1-0:3.8.0(00000000.000*kvarh)",
            "1-0:4.8.0(00000000.000*kvarh)", *_power_lines(r), "1-0:32.7.0(230.0*V)"]


def _q3d(r: Mapping[str, Any], eid: str, gid: str) -> list[str]:
    imp, exp = _totals_only(r)
    return ["/ESY5Q3DA1004 V3.04", "", f"1-0:0.0.0*255({eid[:14]})",
            f"1-0:1.8.0*255({imp:012.7f}*kWh)", f"1-0:2.8.0*255({exp:012.7f}*kWh)",
            f"1-0:21.7.255*255({_num(r.get('power_import_w')):09.2f}*W)",
            f"1-0:1.7.0*255({_num(r.get('power_import_w')):09.2f}*W)",
            f"1-0:2.7.0*255({_num(r.get('power_export_w')):09.2f}*W)",
            "1-0:96.5.5*255(82)", f"0-0:96.1.255*255({eid[:20]})"]


def _iskra_ie(r: Mapping[str, Any], eid: str, gid: str) -> list[str]:
    return ["/ISk5\\2MIE5T-200", "", f"0-0:96.1.0({eid[:20]})",
            f"0-0:1.0.0({dsmr_timestamp(r['timestamp'], _DUBLIN)})", *_tariff_lines(r), *_power_lines(r),
            f"1-0:21.7.0({_kw(r.get('power_import_w'))})", f"1-0:22.7.0({_kw(r.get('power_export_w'))})",
            "1-0:32.7.0(235.0*V)", "1-0:31.7.0(000*A)", "0-0:96.3.10(1)", "0-0:96.13.0()",
            f"0-0:96.1.1({eid})"]


def _eon_hungary(r: Mapping[str, Any], eid: str, gid: str) -> list[str]:
    imp, exp = _totals_only(r)
    return ["/SLB5\\253730000_A", "", f"0-0:1.0.0({dsmr_timestamp(r['timestamp'])})",
            f"0-0:42.0.0({eid[:32]})", f"0-0:96.1.0({eid[:20]})", "0-0:96.14.0(0001)",
            f"1-0:1.8.0({_kwh(imp)})", f"1-0:1.8.1({_kwh(r.get('import_t1_kwh'))})",
            f"1-0:1.8.2({_kwh(r.get('import_t2_kwh'))})", "1-0:1.8.3(000000.000*kWh)",
            "1-0:1.8.4(000000.000*kWh)", f"1-0:2.8.0({_kwh(exp)})",
            f"1-0:2.8.1({_kwh(r.get('export_t1_kwh'))})", f"1-0:2.8.2({_kwh(r.get('export_t2_kwh'))})",
            "1-0:2.8.3(000000.000*kWh)", "1-0:2.8.4(000000.000*kWh)", "1-0:13.7.0(0.999)",
            "1-0:14.7.0(50.00*Hz)", *_power_lines(r)]


_LINES = {
    "v2.2": lambda r, e, g: _v2(r, e, g, threshold="0999.00*kW"),
    "v3": lambda r, e, g: _v2(r, e, g, threshold="016*A"),
    "v4": _v4,
    "v5": _v5,
    "fluvius": _fluvius,
    "smarty": _smarty,
    "sweden": _sweden,
    "q3d": _q3d,
    "iskra_ie": _iskra_ie,
    "eon_hungary": _eon_hungary,
}
