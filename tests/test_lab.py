"""The lab transports against a sysfs tree laid out in a temporary directory."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hil import _regs as R
from hil.errors import RigConfigError
from hil.host import walk_ext_capabilities
from hil.lab import Bdf, KernelTsm, RigLock, RigLocked, SysfsConfigSpace, SysfsError

BDF = "0000:01:00.0"


def _pcie_cap(image: bytearray, port_type: int, devcap: int) -> None:
    """Capabilities Pointer 0x40, a PCI Express capability there (PCIe 6.x §7.5.3)."""
    image[0x34] = 0x40
    image[0x40:0x44] = (0x10 | (2 | port_type << 4) << 16).to_bytes(4, "little")
    image[0x44:0x48] = devcap.to_bytes(4, "little")


def _put(image: bytearray, offset: int, words: list[int]) -> None:
    for i, word in enumerate(words):
        image[offset + 4 * i : offset + 4 * i + 4] = word.to_bytes(4, "little")


def make_sysfs(root: Path, *, with_tsm: bool = True, tee: bool = True, rp_ide: bool = True) -> Path:
    """root/devices/pci0000:00/0000:00:01.0/<bdf> with bus/pci/devices/<bdf> linking to it:
    the endpoint's config (PCI Express capability, DSN, DOE, IDE) and its Root Port's (a
    Root Port's PCI Express capability, IDE with a Link block when ``rp_ide``)."""
    from hil._fake_hw import FakeIdeCap
    from hil.lab.virtual_rp import RootPortIde

    bridge = root / "devices" / "pci0000:00"
    port = bridge / "0000:00:01.0"
    dev = port / BDF
    dev.mkdir(parents=True)
    image = bytearray(4096)
    image[0:4] = (0x10EE | (0x9048 << 16)).to_bytes(4, "little")
    _pcie_cap(image, 0x0, (1 << 30) if tee else 0)
    image[0x100:0x104] = (0x0003 | (1 << 16) | (R.DOE_CAP_OFFSET << 20)).to_bytes(4, "little")
    image[R.DOE_CAP_OFFSET : R.DOE_CAP_OFFSET + 4] = (
        0x002E | (2 << 16) | (R.IDE_CAP_OFFSET << 20)
    ).to_bytes(4, "little")
    ide = FakeIdeCap()
    _put(image, R.IDE_CAP_OFFSET, [ide.read_index(i) for i in range(ide.size_dw)])
    (dev / "config").write_bytes(bytes(image))
    rp_image = bytearray(4096)
    rp_image[0:4] = (0x1B36 | (0x000C << 16)).to_bytes(4, "little")
    _pcie_cap(rp_image, 0x4, 0)
    if rp_ide:
        rp = RootPortIde()
        _put(rp_image, 0x100, [rp.read_index(i) for i in range(rp.size_dw)])
    (port / "config").write_bytes(bytes(rp_image))
    (dev / "doe_features").mkdir()
    for name in ("0001:01", "0001:02"):
        (dev / "doe_features" / name).write_text(name + "\n")
    (dev / "doe_features" / "doe_discovery").write_text("0001:00\n")
    links = root / "bus" / "pci" / "devices"
    links.mkdir(parents=True)
    (links / BDF).symlink_to(dev)
    (links / "0000:00:01.0").symlink_to(port)
    if with_tsm:
        parent = root / "devices" / "platform" / "hil-link-tsm"
        for name in ("tsm0", "tsm1"):
            (parent / "tsm" / name).mkdir(parents=True)
            (parent / "tsm" / name / "device").symlink_to(parent)
        (root / "class" / "tsm").mkdir(parents=True)
        for name in ("tsm0", "tsm1"):
            (root / "class" / "tsm" / name).symlink_to(parent / "tsm" / name)
        (dev / "tsm").mkdir()
        for name in ("connect", "disconnect", "dsm", "bound"):
            (dev / "tsm" / name).write_text("\n")
        (dev / "authenticated").write_text("\n")
        (bridge / "available_secure_streams").write_text("256\n")
    return dev


def test_bdf_validation_guards_paths() -> None:
    assert str(Bdf.parse("0000:01:00.0")) == "0000:01:00.0"
    assert Bdf.parse("0000:c1:1f.7").requester_id == (0xC1 << 8) | (0x1F << 3) | 7
    for bad in ("../../etc", "0000:01:00", "0000:01:20.0", "0000:01:00.8", "1:2:3.4", ""):
        with pytest.raises(RigConfigError):
            Bdf.parse(bad)


def test_config_space_reads_writes_and_walks(tmp_path: Path) -> None:
    make_sysfs(tmp_path)
    with SysfsConfigSpace(BDF, tmp_path) as cfg:
        assert asyncio.run(cfg.read32(0)) == 0x904810EE
        caps = asyncio.run(walk_ext_capabilities(cfg))
        assert [(c.cap_id, c.offset) for c in caps] == [
            (3, 0x100),
            (0x2E, R.DOE_CAP_OFFSET),
            (0x30, R.IDE_CAP_OFFSET),
        ]
        asyncio.run(cfg.write32(0x600, 0xA5A5_1234))
        assert asyncio.run(cfg.read32(0x600)) == 0xA5A51234
        asyncio.run(cfg.write_bytes(0x601, b"\xff"))
        assert asyncio.run(cfg.read32(0x600)) == 0xA5A5_FF34
        assert cfg.doe_features() == [(1, 0), (1, 1), (1, 2)]
        with pytest.raises(ValueError):
            asyncio.run(cfg.read32(0x1002))


def test_missing_device_and_truncated_reads(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(SysfsError, match="no PCI device"):
        SysfsConfigSpace(BDF, tmp_path).open()
    make_sysfs(tmp_path)
    real_pread = os.pread

    def unprivileged(fd: int, n: int, offset: int) -> bytes:  # what a non-root reader gets
        return real_pread(fd, n, offset) if offset < 64 else b""

    monkeypatch.setattr(os, "pread", unprivileged)
    with pytest.raises(SysfsError, match="not root"):
        SysfsConfigSpace(BDF, tmp_path).open()


def test_lockdown_eperm_is_named(tmp_path: Path, monkeypatch) -> None:
    make_sysfs(tmp_path)
    cfg = SysfsConfigSpace(BDF, tmp_path)
    cfg.open()

    def locked_down(fd: int, data: bytes, offset: int) -> int:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "pwrite", locked_down)
    with pytest.raises(SysfsError, match="locked down"):
        asyncio.run(cfg.write32(0x488, 1))


def test_doe_refused_while_tsm_connected(tmp_path: Path) -> None:
    dev = make_sysfs(tmp_path)
    cfg = SysfsConfigSpace(BDF, tmp_path)
    cfg.check_doe_free()
    (dev / "tsm" / "connect").write_text("tsm0\n")
    with pytest.raises(SysfsError, match="connected to tsm0"):
        cfg.check_doe_free()


def test_tsm_files(tmp_path: Path, monkeypatch) -> None:
    dev = make_sysfs(tmp_path)
    tsm = KernelTsm(BDF, tmp_path)
    assert tsm.tsms() == ["tsm0", "tsm1"]
    assert tsm.connected() == "" and not tsm.authenticated()
    tsm.connect("tsm0")
    assert (dev / "tsm" / "connect").read_text() == "tsm0\n"
    (dev / "authenticated").write_text("tsm0\n")
    assert tsm.authenticated()
    (dev / "authenticated").write_text("0\n")  # the native-CMA form
    assert not tsm.authenticated()
    assert tsm.available_secure_streams() == 256
    (dev.parents[1] / "stream0.0.0").symlink_to(dev)
    assert tsm.streams() == [(0, 0, 0)]
    assert asyncio.run(tsm.root_port()) == dev.parent
    assert not tsm.supports("lock") and tsm.pci_mode("tsm0") is None
    with pytest.raises(Exception, match="not a TSM name"):
        tsm.connect("../x")

    def busy(fd: int, data: bytes) -> int:
        raise OSError(errno.EBUSY, "Device or resource busy")

    monkeypatch.setattr(os, "write", busy)
    with pytest.raises(Exception, match="already connected") as e:
        tsm.connect("tsm0")
    assert e.value.errno == errno.EBUSY


def test_tsm_without_tsm_dir(tmp_path: Path) -> None:
    make_sysfs(tmp_path, with_tsm=False)
    with pytest.raises(Exception, match="no tsm/ directory"):
        KernelTsm(BDF, tmp_path).connected()


def test_rig_lock_one_run_at_a_time(tmp_path: Path) -> None:
    with RigLock("lab-1", tmp_path) as lock:
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
        with pytest.raises(RigLocked, match="held by pid"):
            RigLock("lab-1", tmp_path).acquire()
    assert not (tmp_path / "lab-1.lock").exists()


def test_a_stale_lock_is_taken_over(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    import socket

    (tmp_path / "lab-2.lock").write_text(
        json.dumps({"pid": int(dead), "host": socket.gethostname()})
    )
    with RigLock("lab-2", tmp_path):
        pass
    (tmp_path / "lab-3.lock").write_text("{garbage")
    with RigLock("lab-3", tmp_path):
        pass


def test_rigs_check_probes_a_lab_rig(tmp_path: Path, repo: Path) -> None:
    """`hil rigs check` on a lab rig whose sysfs root, UART and supply are all stand-ins."""
    import pty
    import threading
    import tty

    from hil.codec.uart import Channel, Deframer, Frame, Telemetry

    make_sysfs(tmp_path / "sys")
    master, slave = pty.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    stop = threading.Event()

    def board() -> None:  # a stand-in board: answers TELEMETRY_REQ as uart_bridge does
        deframer = Deframer()
        os.set_blocking(master, False)
        while not stop.is_set():
            try:
                data = os.read(master, 4096)
            except (BlockingIOError, OSError):
                stop.wait(0.01)
                continue
            for frame in deframer.feed(data):
                if frame.channel == Channel.TELEMETRY_REQ:
                    record = Telemetry(
                        tdi_state=0, streams=(0, 0), doe_errors=0, ide_check_failures=0, uptime_ms=5
                    )
                    os.write(master, Frame(Channel.TELEMETRY, 0, record.encode()).encode())

    thread = threading.Thread(target=board, daemon=True)
    thread.start()
    rig = tmp_path / "bench.toml"
    rig.write_text(
        "[rig]\nkind = 'lab'\nprovides = ['config', 'doe', 'tsm']\n"
        f"[lab]\nbdf = '{BDF}'\nsysfs_root = '{tmp_path / 'sys'}'\n"
        f"lock_dir = '{tmp_path / 'locks'}'\nserial = '{os.ttyname(slave)}'\n"
        f"visa_resource = 'USB0::0x2A8D::0x1002::SIM0001::INSTR'\n"
        "visa_library = '@sim-psu'\n"
        "[settings]\ntrust_anchor = 'test-pki'\n"
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "hil.cli", "rigs", "check", str(rig)],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        stop.set()
        thread.join(timeout=5)
        os.close(master)
        os.close(slave)
    # This machine's own kernel configuration is what it is: the rest must all be ok.
    kernel_ok = "ok    kernel config" in proc.stdout
    assert kernel_ok or "FAIL  kernel config" in proc.stdout, proc.stdout
    assert proc.returncode == (0 if kernel_ok else 1), proc.stdout + proc.stderr
    for probe in (
        "privileges",
        "lock directory",
        "trust anchor",
        "device present",
        "capabilities found",
        "TSM present",
        "device tsm/",
        "DEVCAP.TEE",
        "Root Port IDE",
        "doe_features",
        "serial answering",
        "instrument identified",
    ):
        assert f"ok    {probe}" in proc.stdout, proc.stdout
    assert "tsm0 (device hil-link-tsm)" in proc.stdout
    assert "0000:00:01.0: IDE at 0x100, Link IDE (1 TC), 4 Selective streams" in proc.stdout
    assert "10ee" in proc.stdout and "hil,SIM-PSU-1" in proc.stdout
    assert "the board answers: TDI state 0, 2 streams" in proc.stdout


def test_a_lab_rig_with_serial_gives_vectors_the_telemetry(tmp_path: Path) -> None:
    """The lab backend opens [lab] serial (a pty here, a stand-in board on its master),
    hands the telemetry to vectors, and errors them naming the port once it is gone."""
    import pty
    import select
    import threading
    import tty

    from hil.backends import LabBackend
    from hil.codec.uart import Channel, Deframer, Frame, Telemetry
    from hil.rigs import parse_rig
    from hil.vectors import default_suite

    make_sysfs(tmp_path / "sys")
    master, slave = pty.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    port = os.ttyname(slave)
    stop = threading.Event()

    def board() -> None:  # answers every TELEMETRY_REQ
        deframer, seq = Deframer(), 0
        while not stop.is_set():
            if not select.select([master], [], [], 0.05)[0]:
                continue
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            for frame in deframer.feed(data):
                if frame.channel == Channel.TELEMETRY_REQ:
                    record = Telemetry(0, (0, 2), 3, 0, 1000 + seq).encode()
                    os.write(master, Frame(Channel.TELEMETRY, seq, record).encode())
                    seq += 1

    thread = threading.Thread(target=board, daemon=True)
    thread.start()
    rig = parse_rig(
        "[rig]\nkind = 'lab'\nprovides = ['config', 'telemetry']\n"
        f"[lab]\nbdf = '{BDF}'\nsysfs_root = '{tmp_path / 'sys'}'\n"
        f"lock_dir = '{tmp_path / 'locks'}'\nserial = '{port}'\n",
        tmp_path / "bench.toml",
    )
    backend = LabBackend(rig)
    vec = default_suite()["telemetry.frames.decode"]
    try:
        backend.prepare()
        result = backend.run_vector(vec, artifacts_dir=tmp_path, waves=False)
        assert result.outcome == "pass", result.message
        stop.set()
        thread.join()
        os.close(master)
        host = backend.serial_host()
        for _ in range(200):  # the controller's thread notices the hang-up
            if host.error is not None:
                break
            threading.Event().wait(0.01)
        result = backend.run_vector(vec, artifacts_dir=tmp_path, waves=False)
        assert result.outcome == "error" and port in result.message, result.message
    finally:
        stop.set()
        backend.finish()
        os.close(slave)
