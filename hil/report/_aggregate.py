"""Aggregation across runs: per rig, per device and per vector, history and statistics.

Every matrix cell and every rig or device row is built from the same thing, the history of a
vector on a rig (or a device): the latest outcome, the number of runs, the pass rate, the first
and last failure, the duration statistics.  A rig's totals are the counts of its vectors'
latest outcomes, so after a ``-k`` subset run the rig row and the matrix agree.

Flaky: one vector, rig, device and commit with more than one of pass/fail/error.
"""

from __future__ import annotations

from typing import Any

from ._collect import OUTCOMES, Run

__all__ = ["HISTORY_CAP", "aggregate", "compare_runs"]

#: How many outcomes of a cell's history the summary (and its sparkline) keeps: the latest.
HISTORY_CAP = 60
_VERDICTS = ("pass", "fail", "error")


#: One record in a history: (run index, outcome, duration, record, run, (device, commit)).
_Entry = tuple[int, str, float, dict[str, Any], Run, tuple[str, str]]


def _entry_json(e: _Entry) -> dict[str, Any]:
    _i, outcome, _d, rec, run, _g = e
    return {
        "outcome": outcome,
        "run_id": run.run_id,
        "rig": run.rig,
        "lab": run.lab,
        "started": rec.get("started") or run.started,
        "message": _short(rec.get("message") or ""),
        "artifacts": [_link(run, a) for a in rec.get("artifacts") or () if isinstance(a, str)],
    }


def _cell(history: list[_Entry]) -> dict[str, Any]:
    """The statistics of one vector's history on one rig (or device), oldest first."""
    counts = dict.fromkeys(OUTCOMES, 0)
    first_failure = last_failure = None
    for e in history:
        counts[e[1]] += 1
        if e[1] == "fail" or e[1] == "error":
            if first_failure is None:
                first_failure = e
            last_failure = e
    judged = counts["pass"] + counts["fail"] + counts["error"]
    d = sorted([e[2] for e in history])
    mid = len(d) // 2
    median = d[mid] if len(d) % 2 else (d[mid - 1] + d[mid]) / 2
    last = _entry_json(history[-1])
    return {
        "latest": last["outcome"],
        "latest_run": last["run_id"],
        "lab": last["lab"],
        "message": last["message"],
        "artifacts": last["artifacts"],
        "runs": len(history),
        "counts": {o: n for o, n in counts.items() if n},
        "pass_rate": round(counts["pass"] / judged, 4) if judged else None,
        "first_failure": _entry_json(first_failure) if first_failure else None,
        "last_failure": _entry_json(last_failure) if last_failure else None,
        "duration_s": {
            "min": round(d[0], 6),
            "median": round(median, 6),
            "mean": round(sum(d) / len(d), 6),
            "max": round(d[-1], 6),
        },
        "history": [[e[0], e[1], round(e[2], 4)] for e in history[-HISTORY_CAP:]],
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
    by_rig: dict[tuple[str, str], list[_Entry]] = {}  # (vector, rig) -> history
    by_dev: dict[tuple[str, str], list[_Entry]] = {}  # (vector, device) -> history
    host_last: dict[tuple[str, str, str], dict[str, _Entry]] = {}  # (device, lab, rig) -> vector
    meas: dict[tuple[str, str, str], dict[str, Any]] = {}
    titles: dict[str, dict[str, str]] = {}
    rigs: dict[str, dict[str, Any]] = {}
    devices: dict[str, dict[str, Any]] = {}
    run_rows = []
    for index, run in enumerate(runs):
        dkey = run.device_key
        _note_run(rigs, devices, run, dkey)
        host = host_last.setdefault((dkey, run.lab, run.rig), {})
        rig_name = run.rig
        group = (dkey, run.git_sha or "?")
        for rec in run.records:
            vid = rec["vector"]
            duration = rec.get("duration_s")
            e: _Entry = (
                index,
                rec["outcome"],
                float(duration) if isinstance(duration, int | float) else 0.0,
                rec,
                run,
                group,
            )
            hist = by_rig.get((vid, rig_name))
            if hist is None:
                hist = by_rig[(vid, rig_name)] = []
                if vid not in titles:
                    titles[vid] = {"title": rec.get("title") or "", "spec": rec.get("spec") or ""}
            hist.append(e)
            hist = by_dev.get((vid, dkey))
            if hist is None:
                hist = by_dev[(vid, dkey)] = []
            hist.append(e)
            host[vid] = e
            if rec.get("measurements"):
                _note_measurements(meas, index, run, vid, rec["measurements"])
        run_rows.append(_run_row(index, run))

    vectors: dict[str, Any] = {}
    for vid in sorted(titles):
        vectors[vid] = {**titles[vid], "group": vid.split(".", 1)[0], "rigs": {}, "devices": {}}
    for (vid, rig_name), hist in sorted(by_rig.items()):
        vectors[vid]["rigs"][rig_name] = _cell(hist)
    for (vid, dkey), hist in sorted(by_dev.items()):
        vectors[vid]["devices"][dkey] = _cell(hist)
    for name, rig in rigs.items():
        latest = [v["rigs"][name]["latest"] for v in vectors.values() if name in v["rigs"]]
        rig["totals"] = {o: latest.count(o) for o in OUTCOMES}
        rig["vectors"] = len(latest)
    for key, dev in devices.items():
        latest = [v["devices"][key]["latest"] for v in vectors.values() if key in v["devices"]]
        dev["totals"] = {o: latest.count(o) for o in OUTCOMES}
        dev["vectors"] = len(latest)
    flaky = _flaky(by_rig)
    for v in vectors.values():
        v["flaky"], v["flaky_rigs"] = False, []
    for f in flaky:
        v = vectors[f["vector"]]
        v["flaky"] = True
        if f["rig"] not in v["flaky_rigs"]:
            v["flaky_rigs"].append(f["rig"])
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
        "interop": _interop(host_last, devices),
        "totals": {o: sum(r["totals"][o] for r in run_rows) for o in OUTCOMES},
    }


def _note_run(
    rigs: dict[str, dict[str, Any]], devices: dict[str, dict[str, Any]], run: Run, dkey: str
) -> None:
    rig = rigs.setdefault(
        run.rig, {"kind": run.kind, "labs": [], "runs": 0, "devices": [], "problems": 0}
    )
    rig["runs"] += 1
    rig["kind"] = run.kind or rig["kind"]
    rig["latest_run"] = run.run_id
    rig["latest_started"] = run.started
    rig["problems"] += len(run.problems)
    for name, value in (("labs", run.lab), ("devices", dkey)):
        if value not in rig[name]:
            rig[name].append(value)
    dev = devices.setdefault(
        dkey, {"runs": 0, "rigs": [], "labs": [], "label": "device not identified"}
    )
    dev["runs"] += 1
    dev_meta = run.meta.get("device")
    if isinstance(dev_meta, dict) and dev_meta:
        dev["label"] = _device_label(run.meta)
        ident = {k: dev_meta.get(k) for k in ("pci", "dsn", "firmware_version") if dev_meta.get(k)}
        spdm = dev_meta.get("spdm") or {}
        if spdm:
            ident["spdm_version"] = spdm.get("version")
            ident["algorithms"] = spdm.get("algorithms")
        dev["identity"] = ident
        if dev_meta.get("notes"):
            dev["notes"] = dev_meta["notes"]
    for name, value in (("rigs", run.rig), ("labs", run.lab)):
        if value not in dev[name]:
            dev[name].append(value)


def _note_measurements(
    meas: dict[tuple[str, str, str], dict[str, Any]],
    index: int,
    run: Run,
    vid: str,
    measurements: list[Any],
) -> None:
    for m in measurements:
        if not isinstance(m, dict) or not isinstance(m.get("value"), int | float):
            continue
        name = str(m.get("name"))
        series = meas.get((vid, run.rig, name))
        if series is None:
            series = meas[(vid, run.rig, name)] = {
                "vector": vid,
                "rig": run.rig,
                "name": name,
                "unit": m.get("unit") or "",
                "low": None,
                "high": None,
                "points": [],
            }
        low, high, v = m.get("low"), m.get("high"), m["value"]
        ok = m.get("ok")
        if ok is None:
            ok = (low is None or v >= low) and (high is None or v <= high)
        series["points"].append([index, v, bool(ok)])
        if low is not None:
            series["low"] = low
        if high is not None:
            series["high"] = high


def _flaky(by_rig: dict[tuple[str, str], list[_Entry]]) -> list[dict[str, Any]]:
    """Vector, rig, device and commit with more than one of pass/fail/error."""
    flaky = []
    for (vid, rig_name), hist in sorted(by_rig.items()):
        groups: dict[tuple[str, str], dict[str, int]] = {}
        for e in hist:
            if e[1] in _VERDICTS:
                g = groups.setdefault(e[5], {})
                g[e[1]] = g.get(e[1], 0) + 1
        for (dkey, sha), outcomes in sorted(groups.items()):
            if len(outcomes) > 1:
                flaky.append(
                    {
                        "vector": vid,
                        "rig": rig_name,
                        "device": dkey,
                        "commit": sha,
                        "outcomes": outcomes,
                        "runs": sum(outcomes.values()),
                    }
                )
    return flaky


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
    host_last: dict[tuple[str, str, str], dict[str, _Entry]], devices: dict[str, Any]
) -> dict[str, Any]:
    """Device x host/rig x vector group: each cell the verdict of the group's vectors (their
    latest outcomes), with provenance (lab and run of each)."""
    hosts = sorted({(lab, rig) for (_d, lab, rig) in host_last})
    groups: set[str] = set()
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    for (dkey, lab, rig), vecs in host_last.items():
        by_group: dict[str, dict[str, Any]] = {}
        for vid, e in vecs.items():
            group = vid.split(".", 1)[0]
            groups.add(group)
            g = by_group.setdefault(group, {"counts": dict.fromkeys(OUTCOMES, 0), "runs": []})
            g["counts"][e[1]] += 1
            prov = f"{e[4].lab}:{e[4].run_id}"
            if prov not in g["runs"]:
                g["runs"].append(prov)
            if e[1] in ("fail", "error"):
                g.setdefault("failing", []).append(vid)
        for g in by_group.values():
            c = g["counts"]
            g["verdict"] = next((o for o in ("fail", "error", "pass", "skip") if c[o]), "n/a")
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
