"""What `hil rigs check` says about a lab host's TSM requirements, on sysfs trees laid out in a
temporary directory: each missing piece named with what the kernel then does."""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
from pathlib import Path

import pytest
from test_lab import BDF, make_sysfs

from hil.lab import KernelTsm, SysfsConfigSpace
from hil.lab import host_checks as H


def test_all_present(tmp_path: Path) -> None:
    dev = make_sysfs(tmp_path)
    tsm = KernelTsm(BDF, tmp_path)
    assert H.tsm_class(tsm) == "tsm0 (device hil-link-tsm); tsm1 (device hil-link-tsm)"
    with pytest.raises(H.HostCheckFailed, match="the rig names tsm3"):
        H.tsm_class(tsm, "tsm3")
    assert H.tsm_directory(tsm) == "bound, connect, disconnect, dsm; not connected"
    with SysfsConfigSpace(BDF, tmp_path) as cfg:
        assert asyncio.run(H.devcap_tee(cfg, tsm)).startswith("set")
    assert "4 Selective streams, 2 address blocks each" in asyncio.run(H.root_port_ide(tsm))
    assert H.doe_features(dev) == "0001:01, 0001:02, doe_discovery"


def test_no_tsm_registered(tmp_path: Path) -> None:
    make_sysfs(tmp_path, with_tsm=False)
    tsm = KernelTsm(BDF, tmp_path)
    with pytest.raises(H.HostCheckFailed, match=r"no TSM driver registered.*SEV-TIO"):
        H.tsm_class(tsm)
    with pytest.raises(H.HostCheckFailed, match="has no tsm/"):
        H.tsm_directory(tsm)


def test_a_root_port_without_ide(tmp_path: Path) -> None:
    make_sysfs(tmp_path, rp_ide=False, tee=False)
    tsm = KernelTsm(BDF, tmp_path)
    with pytest.raises(H.HostCheckFailed, match=r"no IDE capability.*pci_ide_init, no log line"):
        asyncio.run(H.root_port_ide(tsm))
    with SysfsConfigSpace(BDF, tmp_path) as cfg:
        with pytest.raises(H.HostCheckFailed, match="does not see a TSM PF0"):
            asyncio.run(H.devcap_tee(cfg, tsm))


def test_devcap_tee_clear_but_pf0_through_ide(tmp_path: Path) -> None:
    make_sysfs(tmp_path, tee=False)
    with SysfsConfigSpace(BDF, tmp_path) as cfg:
        detail = asyncio.run(H.devcap_tee(cfg, KernelTsm(BDF, tmp_path)))
    assert detail.startswith("clear") and "no tsm/bound" in detail


def test_doe_features_missing_pieces(tmp_path: Path) -> None:
    dev = make_sysfs(tmp_path)
    (dev / "doe_features" / "0001:02").unlink()
    with pytest.raises(H.HostCheckFailed, match="CMA DOE MB must support SSESSION"):
        H.doe_features(dev)
    (dev / "doe_features" / "0001:01").unlink()
    with pytest.raises(H.HostCheckFailed, match="no CMA mailbox"):
        H.doe_features(dev)
    shutil.rmtree(dev / "doe_features")
    with pytest.raises(H.HostCheckFailed, match="no DOE mailbox was created"):
        H.doe_features(dev)


def test_kernel_config(tmp_path: Path) -> None:
    proc = tmp_path / "config.gz"
    proc.write_bytes(gzip.compress(b"CONFIG_PCI_TSM=y\nCONFIG_PCI_IDE=y\nCONFIG_PCI_DOE=y\n"))
    assert H.kernel_config("6.19.0", proc) == "6.19.0: PCI_TSM=y, PCI_IDE=y, PCI_DOE=y, TSM=n"
    proc.write_bytes(gzip.compress(b"# CONFIG_PCI_TSM is not set\n"))
    with pytest.raises(H.HostCheckFailed, match="CONFIG_PCI_TSM is n"):
        H.kernel_config("6.19.0", proc)
    assert "not readable" in H.kernel_config("0.0-none", tmp_path / "absent.gz")


def test_privileges_lock_and_trust_anchor(tmp_path: Path, monkeypatch) -> None:
    status = tmp_path / "status"
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    status.write_text(f"Name:\tx\nCapEff:\t{1 << 21:016x}\n")
    assert H.privileges(status) == "CAP_SYS_ADMIN in the effective set"
    status.write_text("CapEff:\t0000000000000000\n")
    with pytest.raises(H.HostCheckFailed, match="64 bytes"):
        H.privileges(status)
    assert "created on first run" in H.lock_directory(tmp_path / "locks")
    (tmp_path / "file").write_text("")
    with pytest.raises(H.HostCheckFailed, match="not a directory"):
        H.lock_directory(tmp_path / "file")
    assert "test PKI" in H.trust_anchor("test-pki")
    from cryptography.hazmat.primitives.serialization import Encoding

    from hil.firmware import test_pki

    pem = tmp_path / "root.pem"
    pem.write_bytes(test_pki().trust_anchor.public_bytes(Encoding.PEM))
    assert H.trust_anchor(str(pem)).startswith(f"{pem}: ")
    with pytest.raises(H.HostCheckFailed, match="not a certificate"):
        H.trust_anchor(str(status))
    with pytest.raises(H.HostCheckFailed, match="not set"):
        H.trust_anchor(None)
