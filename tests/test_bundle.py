"""Plugfest bundles: signed round trip (tar.gz and zip), and each way a bundle can be wrong
(tampered, truncated, unknown key, lying manifest, unsafe paths) refused with its reason and
kept out of the interop matrix."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from hil.bundle import BundleError, keygen, load_bundles, load_public_keys, pack, verify_bundle
from hil.report import build_summary, fake_run


def _runs(root: Path, rig: str, device: str, outcome: str = "pass") -> list[Path]:
    return [
        fake_run(
            root,
            rig,
            f"run{n}",
            [
                {"vector": "spdm.a.x", "outcome": outcome, "duration_s": 0.1},
                {"vector": "ide.b.y", "outcome": "pass", "duration_s": 0.2},
            ],
            started=f"2026-02-0{n + 1}T00:00:00Z",
            device_key=device,
        )
        for n in range(2)
    ]


@pytest.fixture
def lab(tmp_path: Path) -> tuple[Path, Path]:
    key = tmp_path / "keys" / "labA.pem"
    pub = keygen(key)
    return key, pub


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as t:
        return {m.name: t.extractfile(m).read() for m in t if m.isfile()}  # type: ignore[union-attr]


def _write_tar(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


def _resign(members: dict[str, bytes], manifest: dict, key_path: Path) -> None:
    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    text = json.dumps(manifest).encode()
    members["manifest.json"] = text
    members["manifest.sig"] = base64.b64encode(key.sign(text))  # type: ignore[union-attr]


def test_round_trip_tar_and_zip(tmp_path: Path, lab: tuple[Path, Path]) -> None:
    key, pub = lab
    assert (key.stat().st_mode & 0o777) == 0o600
    with pytest.raises(BundleError, match="exists"):
        keygen(key)
    dirs = _runs(tmp_path / "res", "rigA", "dev1")
    keys = load_public_keys([pub])
    for name in ("b.tar.gz", "b.zip"):
        manifest = pack(dirs, tmp_path / name, key, lab="labA")
        assert manifest["lab"] == "labA" and len(manifest["runs"]) == 2
        run_json = dirs[0] / "run.json"
        entry = manifest["files"]["runs/rigA/run0/run.json"]
        assert entry["sha256"] == hashlib.sha256(run_json.read_bytes()).hexdigest()
        runs, problems = load_bundles([tmp_path / name], keys)
        assert problems == []
        assert sorted(r.run_id for r in runs) == ["run0", "run1"]
        assert {r.lab for r in runs} == {"labA"}
        assert all(r.source.startswith(f"bundle {name} (labA") for r in runs)
        assert runs[0].records[0]["vector"] == "spdm.a.x"
    if sys.platform != "win32":
        assert zipfile.is_zipfile(tmp_path / "b.zip")


def test_interop_matrix_from_two_labs(tmp_path: Path) -> None:
    bundles, pubs = [], []
    for lab_name, rig, outcome in (("labA", "hostA", "pass"), ("labB", "hostB", "fail")):
        key = tmp_path / f"{lab_name}.pem"
        pubs.append(keygen(key))
        dirs = _runs(tmp_path / lab_name, rig, "devX", outcome)
        pack(dirs, tmp_path / f"{lab_name}.tar.gz", key, lab=lab_name)
        bundles.append(tmp_path / f"{lab_name}.tar.gz")
    runs, problems = load_bundles(bundles, load_public_keys(pubs))
    assert problems == []
    interop = build_summary(runs)["interop"]
    assert interop["hosts"] == ["labA/hostA", "labB/hostB"]
    assert interop["groups"] == ["ide", "spdm"]
    cells = interop["cells"]["devX"]
    assert cells["labA/hostA"]["spdm"]["verdict"] == "pass"
    assert cells["labB/hostB"]["spdm"]["verdict"] == "fail"
    assert cells["labB/hostB"]["spdm"]["failing"] == ["spdm.a.x"]
    assert cells["labB/hostB"]["spdm"]["runs"] == ["labB:run1"]  # provenance: lab and run


def _bundle(tmp_path: Path, lab: tuple[Path, Path]) -> tuple[Path, dict[str, bytes]]:
    dirs = _runs(tmp_path / "res", "rigA", "dev1")
    path = tmp_path / "good.tar.gz"
    pack(dirs, path, lab[0], lab="labA")
    return path, _members(path)


def _refused(path: Path, pub: Path, match: str) -> None:
    with pytest.raises(BundleError, match=match):
        verify_bundle(path, load_public_keys([pub]))
    runs, problems = load_bundles([path], load_public_keys([pub]))
    assert runs == [] and len(problems) == 1 and "refused" in problems[0]


def test_tampered_file(tmp_path: Path, lab: tuple[Path, Path]) -> None:
    _, members = _bundle(tmp_path, lab)
    name = "runs/rigA/run0/records.jsonl"
    members[name] = members[name].replace(b'"pass"', b'"fail"', 1)
    _write_tar(tmp_path / "t.tar.gz", members)
    _refused(tmp_path / "t.tar.gz", lab[1], r"records.jsonl does not match its SHA-256.*tampered")


def test_tampered_manifest(tmp_path: Path, lab: tuple[Path, Path]) -> None:
    _, members = _bundle(tmp_path, lab)
    members["manifest.json"] = members["manifest.json"].replace(b'"labA"', b'"labZ"')
    _write_tar(tmp_path / "t.tar.gz", members)
    _refused(tmp_path / "t.tar.gz", lab[1], "signature does not verify")


def test_truncated(tmp_path: Path, lab: tuple[Path, Path]) -> None:
    path, _ = _bundle(tmp_path, lab)
    data = path.read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(data[: len(data) // 2])
    _refused(tmp_path / "cut.tar.gz", lab[1], "not a whole archive")


def test_unknown_key(tmp_path: Path, lab: tuple[Path, Path]) -> None:
    path, _ = _bundle(tmp_path, lab)
    other = keygen(tmp_path / "other.pem")
    _refused(path, other, "not among the trusted keys")


def test_lying_manifests(tmp_path: Path, lab: tuple[Path, Path]) -> None:
    _, members = _bundle(tmp_path, lab)
    manifest = json.loads(members["manifest.json"])
    # Signed by the lab, but the run it names is not the run its run.json says.
    lie = json.loads(json.dumps(manifest))
    lie["runs"][0]["run_id"] = "run7"
    lie["runs"][0]["path"] = "runs/rigA/run7"
    m = dict(members)
    m["runs/rigA/run7/run.json"] = m["runs/rigA/run0/run.json"]
    lie["files"]["runs/rigA/run7/run.json"] = lie["files"]["runs/rigA/run0/run.json"]
    _resign(m, lie, lab[0])
    _write_tar(tmp_path / "lie1.tar.gz", m)
    _refused(tmp_path / "lie1.tar.gz", lab[1], "the manifest lies")
    # A file the manifest lists that the archive does not hold.
    lie = json.loads(json.dumps(manifest))
    lie["files"]["runs/rigA/run0/artifacts/a/sim.log"] = {"sha256": "0" * 64, "size": 1}
    m = dict(members)
    _resign(m, lie, lab[0])
    _write_tar(tmp_path / "lie2.tar.gz", m)
    _refused(tmp_path / "lie2.tar.gz", lab[1], "in the manifest but not in the archive")
    # A file in the archive the signed manifest does not list.
    m = dict(members)
    m["runs/rigA/run0/extra.txt"] = b"slipped in"
    _write_tar(tmp_path / "lie3.tar.gz", m)
    _refused(tmp_path / "lie3.tar.gz", lab[1], "not in the signed manifest")


def test_path_traversal_and_links_are_refused(tmp_path: Path, lab: tuple[Path, Path]) -> None:
    _, members = _bundle(tmp_path, lab)
    manifest = json.loads(members["manifest.json"])
    evil = b"owned"
    for i, name in enumerate(("../evil.txt", "/tmp/evil.txt", "runs/rigA/run0/../../../evil")):
        m = dict(members)
        m[name] = evil
        lie = json.loads(json.dumps(manifest))
        lie["files"][name] = {"sha256": hashlib.sha256(evil).hexdigest(), "size": len(evil)}
        _resign(m, lie, lab[0])
        path = tmp_path / f"evil{i}.tar.gz"
        _write_tar(path, m)
        _refused(path, lab[1], "unsafe path")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path.parent / "evil.txt").exists()
    path = tmp_path / "link.tar.gz"
    with tarfile.open(path, "w:gz") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("runs/rigA/run0/link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        t.addfile(link)
    _refused(path, lab[1], "link or device")


def test_report_cli_refuses_and_builds_the_matrix(tmp_path: Path, lab: tuple[Path, Path]) -> None:
    good, members = _bundle(tmp_path, lab)
    members["runs/rigA/run1/records.jsonl"] = b"{}\n"
    bad = tmp_path / "bad.tar.gz"
    _write_tar(bad, members)
    out = tmp_path / "plugfest"
    proc = subprocess.run(
        [sys.executable, "-m", "hil.cli", "report", "--results", str(tmp_path / "none"),
         "--out", str(out), "--bundle", str(good), str(bad), "--trust", str(lab[1])],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert f"bundle {bad}: refused:" in proc.stderr and "tampered" in proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert [r["source"].split(" ")[1] for r in summary["runs"]] == ["good.tar.gz"] * 2
    assert any("bad.tar.gz: refused" in p for p in summary["problems"])
    html = (out / "report.html").read_text()
    assert "labA/rigA" in html and "bad.tar.gz: refused" in html
    md = (out / "summary.md").read_text()
    assert "| device | labA/rigA |" in md
    assert "| dev1 device not identified | ide 1/1 spdm 1/1 |" in md  # one vector each
    proc = subprocess.run(
        [sys.executable, "-m", "hil.cli", "bundle", "verify", str(good), str(bad),
         "--trust", str(lab[1])],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert f"{good}: verifies: lab labA" in proc.stdout and f"{bad}: refused:" in proc.stdout
    proc = subprocess.run(
        [sys.executable, "-m", "hil.cli", "bundle", "keygen", "-o", str(tmp_path / "k.pem")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert (tmp_path / "k.pem.pub").exists() and "k.pem.pub" in proc.stdout


def test_bundle_refuses_a_non_ed25519_key(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "ec.pem").write_bytes(pem)
    dirs = _runs(tmp_path / "res", "rigA", "dev1")
    with pytest.raises(BundleError, match="not an Ed25519 key"):
        pack(dirs, tmp_path / "x.tar.gz", tmp_path / "ec.pem")
