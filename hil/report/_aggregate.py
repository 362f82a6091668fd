"""Aggregation across runs: per rig, per device and per vector, history and statistics.

Every matrix cell and every rig or device row is built from the same thing, the history of a
vector on a rig (or a device): the latest outcome, the number of runs, the pass rate, the first
and last failure, the duration statistics.  A rig's totals are the counts of its vectors'
latest outcomes, so after a ``-k`` subset run the rig row and the matrix agree.

Flaky: one vector, rig, device and commit with more than one of pass/fail/error.
"""

from __future__ import annotations

import statistics
from typing import Any

from ._collect import OUTCOMES, Run

__all__ = ["HISTORY_CAP", "aggregate", "compare_runs"]

#: How many outcomes of a cell's history the summary (and its sparkline) keeps: the latest.
HISTORY_CAP = 60
_VERDICTS = ("pass", "fail", "error")


class _Cell:
    """The history of one vector on one rig (or one device)."""

    __slots__ = ("counts", "durations", "first_failure", "history", "last", "last_failure")

    def __init__(self) -> None:
        self.counts = dict.fromkeys(OUTCOMES, 0)
        self.durations: list[float] = []
        self.history: list[tuple[int, str, float]] = []  # (run index, outcome, duration)
        self.first_failure: dict[str, Any] | None = None
        self.last_failure: dict[str, Any] | None = None
        self.last: dict[str, Any] | None = None

    def add(self, index: int, run: Run, rec: dict[str, Any]) -> None:
        outcome = rec["outcome"]
        self.counts[outcome] += 1
        duration = rec.get("duration_s")
        d = float(duration) if isinstance(duration, int | float) else 0.0
        self.durations.append(d)
        self.history.append((index, outcome, d))
        entry = {
            "outcome": outcome,
            "run_id": run.run_id,
            "rig": run.rig,
            "lab": run.lab,
            "started": rec.get("started") or run.started,
            "message": _short(rec.get("message") or ""),
            "artifacts": [_link(run, a) for a in rec.get("artifacts") or [] if isinstance(a, str)],
        }
        if outcome in ("fail", "error"):
            if self.first_failure is None:
                self.first_failure = entry
            self.last_failure = entry
        self.last = entry

    def to_json(self) -> dict[str, Any]:
        assert self.last is not None
        judged = sum(self.counts[o] for o in _VERDICTS)
        d = self.durations
        return {
            "latest": self.last["outcome"],
            "latest_run": self.last["run_id"],
            "lab": self.last["lab"],
            "message": self.last["message"],
            "artifacts": self.last["artifacts"],
            "runs": sum(self.counts.values()),
            "counts": {o: n for o, n in self.counts.items() if n},
            "pass_rate": round(self.counts["pass"] / judged, 4) if judged else None,
            "first_failure": self.first_failure,
            "last_failure": self.last_failure,
            "duration_s": {
                "min": round(min(d), 6),
                "median": round(statistics.median(d), 6),
                "mean": round(sum(d) / len(d), 6),
                "max": round(max(d), 6),
            },
            "history": [[i, o, round(x, 4)] for i, o, x in self.history[-HISTORY_CAP:]],
        }


def _short(text: str, limit: int = 600) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _link(run: Run, artifact: str) -> str:
    if run.path is None or artifact.startswith(("/", "..")) or "/../" in artifact:
        return artifact
    return f"{run.path}/{artifact}"


def _device_label(meta: dict[str, Any]) -> str:
    device = meta.get("device") if isinstance(meta.get("device"), dict) else {}
    pci = device.get("pci") or {}
    parts = []
    if pci.get("vendor_id"):
        parts.append(f"{pci.get('vendor_id')}:{pci.get('device_id')}")
    slots = (device.get("spdm") or {}).get("slots") or {}
    certs = (slots.get("0") or {}).get("certificates") or []
    if certs:
        subject = certs[-1].get("subject", "")
        cn = [p[3:] for p in subject.split(",") if p.startswith("CN=")]
        parts.append(cn[0] if cn else subject)
    if device.get("firmware_version"):
        parts.append(str(device["firmware_version"]))
    if not parts and meta.get("peer"):
        parts.append(f"peer {meta['peer']}")
    return " · ".join(parts) or "device not identified"


def aggregate(runs: list[Run]) -> dict[str, Any]:
    """The whole summary (JSON values) of ``runs``, oldest first."""
    rig_cells: dict[str, dict[str, _Cell]] = {}  # vector -> rig -> cell
    dev_cells: dict[str, dict[str, _Cell]] = {}  # vector -> device -> cell
    host_cells: dict[tuple[str, str, str], dict[str, _Cell]] = {}  # (device, lab, rig) -> vector
    flaky_groups: dict[tuple[str, str, str, str], dict[str, list[str]]] = {}
    meas: dict[tuple[str, str, str], dict[str, Any]] = {}
    titles: dict[str, dict[str, str]] = {}
    rigs: dict[str, dict[str, Any]] = {}
    devices: dict[str, dict[str, Any]] = {}
    run_rows = []
    for index, run in enumerate(runs):
        dkey = run.device_key
        rig = rigs.setdefault(
            run.rig,
            {"kind": run.kind, "labs": [], "runs": 0, "devices": [], "problems": 0},
        )
        rig["runs"] += 1
        rig["kind"] = run.kind or rig["kind"]
        rig["latest_run"] = run.run_id
        rig["latest_started"] = run.started
        rig["problems"] += len(run.problems)
        for name, value in (("labs", run.lab), ("devices", dkey)):
            if value not in rig[name]:
                rig[name].append(value)
        dev = devices.setdefault(dkey, {"runs": 0, "rigs": [], "labs": []})
        dev["runs"] += 1
        dev["label"] = (
            _device_label(run.meta)
            if run.meta.get("device")
            else dev.get("label", "device not identified")
        )
        dev_meta = run.meta.get("device") if isinstance(run.meta.get("device"), dict) else {}
        if dev_meta:
            dev["identity"] = {
                k: dev_meta.get(k) for k in ("pci", "dsn", "firmware_version") if dev_meta.get(k)
            }
            spdm = dev_meta.get("spdm") or {}
            if spdm:
                dev["identity"]["spdm_version"] = spdm.get("version")
                dev["identity"]["algorithms"] = spdm.get("algorithms")
            if dev_meta.get("notes"):
                dev["notes"] = dev_meta["notes"]
        for name, value in (("rigs", run.rig), ("labs", run.lab)):
            if value not in dev[name]:
                dev[name].append(value)
        host = host_cells.setdefault((dkey, run.lab, run.rig), {})
        for rec in run.records:
            vid = rec["vector"]
            if vid not in titles:
                titles[vid] = {"title": rec.get("title") or "", "spec": rec.get("spec") or ""}
            for table, key in ((rig_cells, run.rig), (dev_cells, dkey)):
                cells = table.setdefault(vid, {})
                cell = cells.get(key)
                if cell is None:
                    cell = cells[key] = _Cell()
                cell.add(index, run, rec)
            hcell = host.get(vid)
            if hcell is None:
                hcell = host[vid] = _Cell()
            hcell.add(index, run, rec)
            if rec["outcome"] in _VERDICTS:
                fk = (vid, run.rig, dkey, run.git_sha or "?")
                flaky_groups.setdefault(fk, {}).setdefault(rec["outcome"], []).append(run.run_id)
            for m in rec.get("measurements") or ():
                if not isinstance(m, dict) or not isinstance(m.get("value"), int | float):
                    continue
                series = meas.get((vid, run.rig, str(m.get("name"))))
                if series is None:
                    series = meas[(vid, run.rig, str(m.get("name")))] = {
                        "vector": vid,
                        "rig": run.rig,
                        "name": str(m.get("name")),
                        "unit": m.get("unit") or "",
                        "low": m.get("low"),
                        "high": m.get("high"),
                        "points": [],
                    }
                ok = m.get("ok")
                if ok is None:
                    low, high, v = m.get("low"), m.get("high"), m["value"]
                    ok = (low is None or v >= low) and (high is None or v <= high)
                series["points"].append([index, m["value"], bool(ok)])
                if m.get("low") is not None:
                    series["low"] = m.get("low")
                if m.get("high") is not None:
                    series["high"] = m.get("high")
        run_rows.append(_run_row(index, run))

    vectors: dict[str, Any] = {}
    for vid in sorted(rig_cells):
        vectors[vid] = {
            **titles.get(vid, {}),
            "group": vid.split(".", 1)[0],
            "rigs": {r: c.to_json() for r, c in sorted(rig_cells[vid].items())},
            "devices": {d: c.to_json() for d, c in sorted(dev_cells[vid].items())},
        }
    for name, rig in rigs.items():
        latest = [v["rigs"][name]["latest"] for v in vectors.values() if name in v["rigs"]]
        rig["totals"] = {o: latest.count(o) for o in OUTCOMES}
        rig["vectors"] = len(latest)
    for key, dev in devices.items():
        latest = [v["devices"][key]["latest"] for v in vectors.values() if key in v["devices"]]
        dev["totals"] = {o: latest.count(o) for o in OUTCOMES}
        dev["vectors"] = len(latest)
    flaky = []
    for (vid, rig_name, dkey, sha), outcomes in sorted(flaky_groups.items()):
        if len(outcomes) > 1:
            flaky.append(
                {
                    "vector": vid,
                    "rig": rig_name,
                    "device": dkey,
                    "commit": sha,
                    "outcomes": {o: len(ids) for o, ids in outcomes.items()},
                    "runs": sum(len(ids) for ids in outcomes.values()),
                }
            )
    flaky_ids = {f["vector"] for f in flaky}
    for vid, v in vectors.items():
        v["flaky"] = vid in flaky_ids
    measurements = []
    for series in meas.values():
        pts = series["points"]
        values = [p[1] for p in pts]
        series["count"] = len(pts)
        series["out_of_limits"] = sum(1 for p in pts if not p[2])
        series["min"], series["max"], series["last"] = min(values), max(values), values[-1]
        measurements.append(series)
    measurements.sort(key=lambda s: (-s["out_of_limits"], s["vector"], s["rig"], s["name"]))
    return {
        "runs": run_rows,
        "rigs": dict(sorted(rigs.items())),
        "devices": dict(sorted(devices.items())),
        "vectors": vectors,
        "flaky": flaky,
        "measurements": measurements,
        "interop": _interop(host_cells, devices),
        "totals": {o: sum(r["totals"][o] for r in run_rows) for o in OUTCOMES},
    }


def _run_row(index: int, run: Run) -> dict[str, Any]:
    failed = [
        {
            "vector": r["vector"],
            "outcome": r["outcome"],
            "message": _short(r.get("message") or "", 300),
            "artifacts": [_link(run, a) for a in r.get("artifacts") or [] if isinstance(a, str)],
        }
        for r in run.records
        if r["outcome"] in ("fail", "error")
    ]
    meta = run.meta
    sel = meta.get("selection") if isinstance(meta.get("selection"), dict) else {}
    return {
        "index": index,
        "run_id": run.run_id,
        "rig": run.rig,
        "kind": run.kind,
        "lab": run.lab,
        "source": run.source,
        "started": run.started,
        "finished": run.finished,
        "device": run.device_key,
        "git_sha": run.git_sha,
        "selection": {k: v for k, v in sel.items() if v} if sel else {},
        "totals": run.totals(),
        "path": run.path,
        "problems": run.problems,
        "shards": run.shards,
        "failed": failed,
    }


def _interop(
    host_cells: dict[tuple[str, str, str], dict[str, _Cell]], devices: dict[str, Any]
) -> dict[str, Any]:
    """Device x host/rig x vector group: each cell the latest verdicts, with provenance."""
    hosts = sorted({(lab, rig) for (_d, lab, rig) in host_cells})
    groups: set[str] = set()
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    for (dkey, lab, rig), vecs in host_cells.items():
        by_group: dict[str, dict[str, Any]] = {}
        for vid, cell in vecs.items():
            group = vid.split(".", 1)[0]
            groups.add(group)
            assert cell.last is not None
            g = by_group.setdefault(group, {"counts": dict.fromkeys(OUTCOMES, 0), "runs": []})
            g["counts"][cell.last["outcome"]] += 1
            prov = f"{cell.last['lab']}:{cell.last['run_id']}"
            if prov not in g["runs"]:
                g["runs"].append(prov)
            if cell.last["outcome"] in ("fail", "error"):
                g.setdefault("failing", []).append(vid)
        for g in by_group.values():
            c = g["counts"]
            g["verdict"] = (
                "fail"
                if c["fail"]
                else "error"
                if c["error"]
                else "pass"
                if c["pass"]
                else "skip"
                if c["skip"]
                else "n/a"
            )
            g["counts"] = {o: n for o, n in c.items() if n}
        cells.setdefault(dkey, {})[f"{lab}/{rig}"] = by_group
    return {
        "hosts": [f"{lab}/{rig}" for lab, rig in hosts],
        "groups": sorted(groups),
        "devices": {d: devices.get(d, {}).get("label", d) for d in sorted(cells)},
        "cells": cells,
    }


def compare_runs(a: Run, b: Run) -> dict[str, Any]:
    """What changed from run ``a`` to run ``b``: outcomes and measurements, per vector."""
    ra = {r["vector"]: r for r in a.records}
    rb = {r["vector"]: r for r in b.records}
    changed, measurements = [], []
    for vid in sorted(set(ra) | set(rb)):
        x, y = ra.get(vid), rb.get(vid)
        ox = x["outcome"] if x else "absent"
        oy = y["outcome"] if y else "absent"
        if ox != oy:
            changed.append(
                {
                    "vector": vid,
                    "a": ox,
                    "b": oy,
                    "message": _short((y or x or {}).get("message") or "", 300),
                }
            )
        if x and y:
            mx = {m.get("name"): m for m in x.get("measurements") or [] if isinstance(m, dict)}
            my = {m.get("name"): m for m in y.get("measurements") or [] if isinstance(m, dict)}
            for name in sorted(set(mx) & set(my), key=str):
                vx, vy = mx[name].get("value"), my[name].get("value")
                if vx != vy and isinstance(vx, int | float) and isinstance(vy, int | float):
                    measurements.append(
                        {
                            "vector": vid,
                            "name": name,
                            "unit": my[name].get("unit") or "",
                            "a": vx,
                            "b": vy,
                            "delta": vy - vx,
                            "a_ok": mx[name].get("ok", True),
                            "b_ok": my[name].get("ok", True),
                        }
                    )
    return {
        "a": {"run_id": a.run_id, "rig": a.rig, "device": a.device_key, "totals": a.totals()},
        "b": {"run_id": b.run_id, "rig": b.rig, "device": b.device_key, "totals": b.totals()},
        "changed": changed,
        "measurements": measurements,
    }
