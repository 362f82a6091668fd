"""Interop with DMTF's SPDM stack (spdm-emu on libspdm), in both directions.

These run when ``HIL_DMTF_BIN`` names the folder that holds a DMTF spdm-emu build's
``spdm_responder_emu``, ``spdm_requester_emu`` and ``spdm_device_validator_sample`` (its
``build/bin``, with the sample keys beside them: the binaries load them relative to their
working directory).  Without it they are skipped, saying so.  See README, "Interop with DMTF".

- hil as the requester: the vector suite against ``spdm_responder_emu`` (without and with
  mutual authentication), every applicable ``spdm.*``, ``ide_km.*`` and ``tdisp.*`` vector
  passing except verdicts that are spec violations of the sample, each with its clause;
- hil as the responder: ``spdm_requester_emu``'s own flow and the SPDM-Responder-Validator
  against ``hil serve``.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import hil, only_run, records

DMTF_BIN = os.environ.get("HIL_DMTF_BIN", "")
_EMU = ("spdm_responder_emu", "spdm_requester_emu", "spdm_device_validator_sample")


def _why_not(needs: tuple[str, ...] = _EMU) -> str:
    if not DMTF_BIN:
        return (
            "HIL_DMTF_BIN is not set: it names the bin folder of a DMTF spdm-emu build "
            f"({', '.join(needs)})"
        )
    missing = [name for name in needs if not (Path(DMTF_BIN) / name).is_file()]
    if missing:
        return f"HIL_DMTF_BIN={DMTF_BIN} lacks {', '.join(missing)}"
    return ""


pytestmark = pytest.mark.skipif(bool(_why_not()), reason=_why_not() or "unused")


def _bin() -> Path:
    return Path(DMTF_BIN).resolve()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, proc: subprocess.Popen[str], log: Path) -> None:
    """Wait until the responder listens, without connecting (a bare close would stop it)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode}: {log.read_text()[-2000:]}")
        listening = Path("/proc/net/tcp").read_text()
        if f":{port:04X} 00000000:0000 0A" in listening:
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}: {log.read_text()[-2000:]}")


def start_emu_responder(log_dir: Path, *options: str) -> tuple[subprocess.Popen[str], int]:
    """spdm_responder_emu (PCI_DOE) with ``options``, listening on a free port."""
    port = _free_port()
    log = log_dir / f"responder-{port}.log"
    proc = subprocess.Popen(
        ["./spdm_responder_emu", "--trans", "PCI_DOE", "--port", str(port), *options],
        cwd=_bin(),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_listening(port, proc, log)
    except AssertionError:
        stop(proc)
        raise
    return proc, port


def start_hil_serve(log_dir: Path, repo: Path, *options: str) -> tuple[subprocess.Popen[str], int]:
    """``hil serve`` with ``options``, listening on a free port."""
    port = _free_port()
    log = log_dir / f"serve-{port}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hil.cli", "serve", "--port", str(port), *options],
        cwd=repo,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 600  # the simulated rig builds its HDL first
    while "listening on" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise AssertionError(f"hil serve did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    return proc, port


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def emu_responder(tmp_path: Path) -> Iterator[object]:
    """Start spdm_responder_emu (PCI_DOE) with the given options on a free port."""
    started: list[subprocess.Popen[str]] = []

    def start(*options: str) -> int:
        proc, port = start_emu_responder(tmp_path, *options)
        started.append(proc)
        return port

    yield start
    for proc in started:
        stop(proc)


# Verdicts against the sample that are the sample's, with the clause they rest on: the vector
# fails, and says so.  Everything else applicable must pass.
SAMPLE_SPEC_VIOLATIONS: dict[str, str] = {
    # Its IDE_KM sample: QUERY_RESP carries 288 bytes past the structure its capability
    # describes; KEY_PROG with a bad PortIndex gets an SPDM ERROR, not KP_ACK 02h; IDE_KM is
    # answered in the clear and from a second session.
    "ide_km.query.well_formed": "§6.33.3",
    "ide_km.key_prog.bad_fields": "KP_ACK",
    "ide_km.outside_session.ignored": "§6.33.3",
    "ide_km.session_binding": "§6.33.3",
    # The same sample, status by status: a KEY_PROG of the wrong length or for a PortIndex past
    # MaxPortIndex gets an SPDM ERROR (not KP_ACK 01h/02h or silence); a reserved Sub-Stream
    # and an IFV other than 1 are acknowledged with Success (not 03h).
    "ide_km.kp_ack.incorrect_length": "§6.33.3",
    "ide_km.kp_ack.unsupported_port_index": "§6.33.3",
    "ide_km.kp_ack.unsupported_sub_stream": "§6.33.3",
    "ide_km.kp_ack.unsupported_ifv": "§6.33.5",
    # Its TDISP sample: answered in the clear; the report in CONFIG_UNLOCKED refused with
    # INVALID_REQUEST; STOP in CONFIG_UNLOCKED refused; the TDI stays in RUN after its
    # session ends.
    "tdisp.outside_session.ignored": "§11.2.2",
    "tdisp.report.before_lock": "§11.3.10",
    "tdisp.stop.in_unlocked": "§11.3.1",
    "tdisp.session_end.error": "§11.4.5",
    # Its TDISP_CAPABILITIES: DEV_ADDR_WIDTH 48 and NUM_REQ_THIS/ALL 0; LOCK with BIND_P2P,
    # which it does not list as supported, succeeds.
    "tdisp.capabilities.field_rules": "§11.3.7",
    "tdisp.capabilities.lock_flags": "§11.3.8",
}


def _run_suite(tmp_path: Path, repo: Path, port: int, *extra: str) -> dict[str, dict]:
    results = tmp_path / "results"
    anchor = _bin() / "ecp384" / "ca.cert.der"
    rig = tmp_path / "dmtf-sample.toml"
    rig.write_text(
        "[rig]\nkind = 'spdm-socket'\nprovides = ['spdm', 'ide_km', 'tdisp']\n"
        "[socket]\nhost = '127.0.0.1'\nport = 2323\n"
        # the sample TDI and IDE_KM responders answer FUNCTION_ID 0xBEEF and PortIndex 1
        "[settings]\nfunction_id = 0xBEEF\nide_km_port_index = 1\n"
    )
    proc = hil(
        "run",
        "--rig",
        str(rig),
        "--peer",
        f"127.0.0.1:{port}",
        "--trust-anchor",
        str(anchor),
        "--results",
        str(results),
        "-k",
        "spdm or ide_km or tdisp",
        *extra,
        cwd=repo,
        timeout=600,
    )
    recs = records(only_run(results, "dmtf-sample"))
    assert recs, proc.stdout + proc.stderr
    return recs


def _check_verdicts(recs: dict[str, dict]) -> None:
    ran = {v: r for v, r in recs.items() if r["outcome"] not in ("n/a", "skip")}
    assert len(ran) >= 20, sorted(recs)
    bad = {
        v: f"{r['outcome']}: {r.get('message', '')}"
        for v, r in ran.items()
        if r["outcome"] != "pass" and v not in SAMPLE_SPEC_VIOLATIONS
    }
    assert not bad, bad
    for vector, clause in SAMPLE_SPEC_VIOLATIONS.items():
        if vector in ran:
            assert ran[vector]["outcome"] == "fail", (vector, ran[vector])
            assert clause in ran[vector].get("message", ""), (vector, ran[vector])


def test_vectors_against_the_dmtf_responder(emu_responder, tmp_path: Path, repo: Path) -> None:
    port = emu_responder("--mut_auth", "NO", "--basic_mut_auth", "NO")
    _check_verdicts(_run_suite(tmp_path, repo, port))


@pytest.mark.parametrize(
    ("options", "key_dir"),
    [
        ((), "rsa3072"),  # the responder's defaults: RSA requester keys only
        (("--req_asym", "ECDSA_P384"), "ecp384"),
    ],
    ids=["defaults-rsa3072", "ecdsa-p384"],
)
def test_vectors_with_mutual_authentication(
    emu_responder, tmp_path: Path, repo: Path, options: tuple[str, ...], key_dir: str
) -> None:
    """Basic mutual authentication in CHALLENGE and mutual authentication with encapsulated
    requests in KEY_EXCHANGE (the responder's defaults), the requester signing FINISH."""
    port = emu_responder(*options)
    chain = _bin() / key_dir / "bundle_requester.certchain.der"
    key = _bin() / key_dir / "end_requester.key"
    recs = _run_suite(
        tmp_path, repo, port, "--requester-cert-chain", str(chain), "--requester-key", str(key)
    )
    _check_verdicts(recs)
    session = recs["spdm.session.established_and_used"]
    mutual = {m["name"]: m["value"] for m in session["measurements"]}
    assert mutual.get("mutual_authentications", 0) >= 1, session


# -- hil as the responder ---------------------------------------------------------------------


@pytest.fixture
def hil_serve(tmp_path: Path, repo: Path) -> Iterator[object]:
    """Start ``hil serve`` with the given options on a free port; stop it afterwards."""
    started: list[subprocess.Popen[str]] = []

    def start(*options: str) -> int:
        proc, port = start_hil_serve(tmp_path, repo, *options)
        started.append(proc)
        return port

    yield start
    for proc in started:
        stop(proc)


def _dmtf_identity() -> list[str]:
    """Serve DMTF's sample responder chain, so their requester finds its own root."""
    sample = _bin() / "ecp384"
    return [
        "--cert-chain",
        str(sample / "bundle_responder.certchain.der"),
        "--key",
        str(sample / "end_responder.key"),
    ]


def _validator(port: int, workdir: Path) -> tuple[int, int, int, str]:
    """Run the SPDM-Responder-Validator; (pass, fail, not tested, log).  It writes test.log
    into its working directory, so it runs in one of ours."""
    subprocess.run(
        [str(_bin() / "spdm_device_validator_sample"), "--trans", "PCI_DOE", "--port", str(port)],
        cwd=workdir,
        capture_output=True,
        timeout=900,
    )
    log = (workdir / "test.log").read_text(errors="replace")
    total = re.search(
        r"test suite \(spdm_responder_conformance_test\) - pass: (\d+), fail: (\d+)", log
    )
    assert total, log[-3000:]
    not_tested = sum(1 for line in log.splitlines() if "NOT_TESTED" in line)
    return int(total.group(1)), int(total.group(2)), not_tested, log


@pytest.mark.parametrize("versions", [None, "1.2"], ids=["1.2+1.3", "1.2-only"])
def test_validator_finds_no_failure_on_the_fake(hil_serve, tmp_path: Path, versions) -> None:
    port = hil_serve("--rig", "fake", *(["--spdm-versions", versions] if versions else []))
    passed, failed, not_tested, log = _validator(port, tmp_path)
    fails = [line for line in log.splitlines() if " - FAIL" in line]
    assert failed == 0 and not fails, fails[:20]
    assert passed > 1000, passed
    # NOT_TESTED only where an optional capability is not offered: SPDM 1.0/1.1 and
    # HANDSHAKE_IN_THE_CLEAR_CAP (DSP0274: older versions and that capability are optional).
    assert not_tested <= 17, [line for line in log.splitlines() if "NOT_TESTED" in line]
    for group in range(1, 17):
        if group in (10, 11, 14, 15):  # the validator has no such groups
            continue
        assert re.search(rf"test group {group} \(", log), f"group {group} did not run"


def test_validator_finds_no_failure_on_the_simulated_endpoint(hil_serve, tmp_path: Path) -> None:
    port = hil_serve("--rig", "sim-verilator")
    passed, failed, _, log = _validator(port, tmp_path)
    assert failed == 0, [line for line in log.splitlines() if " - FAIL" in line][:20]
    assert passed > 1000, passed


_PCIE_STEPS = (
    "key_prog",
    "key_set_go",
    "start_interface done",
    "stop_interface done",
    "key_set_stop",
)


#: spdm_requester_emu's session steps without its application (IDE_KM/TDISP/CXL) step.
_SESSION_FLOW = "KEY_EX,KEY_UPDATE,HEARTBEAT,MEAS,DIGEST,CERT"


def _requester_emu(port: int, *options: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run spdm_requester_emu (PCI_DOE) against ``port`` from its bin folder; (process, log)."""
    proc = subprocess.run(
        ["./spdm_requester_emu", "--trans", "PCI_DOE", "--port", str(port), *options],
        cwd=_bin(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc, proc.stdout + proc.stderr


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_the_dmtf_requester_completes_spdm_ide_km_and_tdisp(
    hil_serve, tmp_path: Path, version: str
) -> None:
    """spdm_requester_emu's default flow: SPDM, a session, PCIe IDE_KM (PortIndex 1) and
    TDISP (FUNCTION_ID 0xBEEF).  Its CXL IDE_KM step after them is answered UnsupportedRequest,
    which ends its run with an error: that part is CXL's, not PCIe's."""
    port = hil_serve(
        "--rig",
        "fake",
        "--ide-km-port-index",
        "1",
        "--function-id",
        "0xBEEF",
        "--ide-stream-id",
        "0",
        *_dmtf_identity(),
    )
    _, log = _requester_emu(port, "--ver", version)
    for step in _PCIE_STEPS:
        assert step in log, f"{step!r} missing: {log[-3000:]}"
    assert "tdi_state: 0x02" in log  # RUN after START_INTERFACE
    assert "verify_peer_cert_chain_buffer - FAIL" not in log
    # Only the CXL step fails (UnsupportedRequest, libspdm status 8001000a), and it is
    # reported by the application-session step and by the session step around it.
    errors = [line for line in log.splitlines() if "ERROR:" in line]
    assert all(re.search(r"do_(app_)?session_via_spdm - 8001000a", line) for line in errors), errors


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_the_dmtf_requester_session_flow_exits_cleanly(
    hil_serve, tmp_path: Path, version: str
) -> None:
    port = hil_serve("--rig", "fake", *_dmtf_identity())
    proc, log = _requester_emu(port, "--ver", version, "--exe_session", _SESSION_FLOW)
    assert proc.returncode == 0, log[-3000:]
    assert "SPDM_HEARTBEAT_ACK" in log and "SPDM_END_SESSION_ACK" in log
    assert "ERROR:" not in log, log[-3000:]


# -- hil serve requiring mutual authentication ------------------------------------------------


def _requiring_mutual_auth(mode: str) -> list[str]:
    """``hil serve`` options: require ``mode``, trusting the root of the DMTF sample requester
    chain (rsa3072, the emu requester's default); ``requested`` holds that chain already."""
    sample = _bin() / "rsa3072"
    options = ["--mut-auth", mode, "--requester-trust-anchor", str(sample / "ca.cert.der")]
    if mode == "requested":
        options += ["--requester-cert-chain", str(sample / "bundle_requester.certchain.der")]
    return options


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("mode", ["requested", "encap", "digests"])
def test_the_dmtf_requester_authenticates_itself_to_hil_serve(
    hil_serve, tmp_path: Path, mode: str, version: str
) -> None:
    """KEY_EXCHANGE_RSP MutAuthRequested bit 0, 1 or 2: libspdm's requester (RSA-3072 chain)
    gives its chain through the encapsulated flow (bits 1 and 2) and signs FINISH; the
    session then carries KEY_UPDATE, HEARTBEAT and END_SESSION."""
    port = hil_serve("--rig", "fake", *_dmtf_identity(), *_requiring_mutual_auth(mode))
    proc, log = _requester_emu(port, "--ver", version, "--exe_session", _SESSION_FLOW)
    assert proc.returncode == 0, log[-3000:]
    assert "ERROR:" not in log, log[-3000:]
    delivered = log.count("SPDM_DELIVER_ENCAPSULATED_RESPONSE(")
    assert (delivered > 1) == (mode != "requested"), delivered  # DIGESTS, CERTIFICATE portions
    assert "SPDM_FINISH_RSP" in log and "SPDM_END_SESSION_ACK" in log


def test_validator_finds_no_failure_with_mutual_authentication_required(
    hil_serve, tmp_path: Path
) -> None:
    """The validator's sessions clear MUT_AUTH_CAP, so a device requiring mutual
    authentication asks them nothing (its 8.x assertions check MutAuthRequested is 0); its
    ALGORITHMS cases, which set MUT_AUTH_CAP, check that a ReqBaseAsymAlg is selected."""
    port = hil_serve("--rig", "fake", *_requiring_mutual_auth("encap"))
    passed, failed, _, log = _validator(port, tmp_path)
    assert failed == 0, [line for line in log.splitlines() if " - FAIL" in line][:20]
    assert passed > 1000, passed
