"""What a run tested: the device's identity, learnt once per run and recorded in run.json.

The probe is an ordinary vector (``hil.identity``, needs nothing) that the run's backend runs
once before the suite, in the controlling process, so every rig kind learns identity the way it
runs vectors: one simulation on a simulated rig, one connection to a socket peer, the sysfs
files on a lab host.  It reads the configuration-space IDs (PCIe 6.x §7.5.1: Vendor, Device,
Revision, Class Code, Subsystem; §7.9.3 Device Serial Number) and makes one SPDM connection
(DSP0274: VCA, DIGESTS, CERTIFICATE of each provisioned slot, one unsigned MEASUREMENTS).  It
never fails: what it could not learn is a note.  Certificates are public; no key material is
read or recorded.

The device key (:func:`device_key`) lines up runs of one device across rigs and labs: a hash of
its IDs, its serial number and the digest of its slot-0 leaf certificate's public key.
"""

from __future__ import annotations

import copy
import hashlib
import json
import platform
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .vectors import Outcome, VectorContext, vector

if TYPE_CHECKING:
    from .backends import Backend

__all__ = ["IDENTITY_VECTOR", "device_key", "identify", "probe"]

_DSN_CAP = 0x0003  # Device Serial Number extended capability (PCIe 6.x §7.9.3)
_DOE_CAP = 0x002E


def _flag_names(enum: Any, value: int) -> str | None:
    if not value:
        return None
    try:
        return str(enum(value).name)
    except ValueError:
        return f"{value:#x}"


async def _config_ids(ctx: VectorContext, out: dict[str, Any], notes: list[str]) -> None:
    config = ctx.config_if_any
    if config is None:
        notes.append("no configuration space on this rig: no PCI IDs")
        return
    try:
        id0 = await config.read32(0x00)
        if id0 in (0xFFFFFFFF, 0):
            notes.append(f"configuration space reads {id0:#010x} at 0x00: no function answers")
            return
        rev_class = await config.read32(0x08)
        header_type = (await config.read32(0x0C) >> 16) & 0x7F
        out["pci"] = {
            "vendor_id": f"{id0 & 0xFFFF:04x}",
            "device_id": f"{id0 >> 16:04x}",
            "revision_id": f"{rev_class & 0xFF:02x}",
            "class_code": f"{rev_class >> 8:06x}",
        }
        if header_type == 0:
            sub = await config.read32(0x2C)
            out["pci"]["subsystem_vendor_id"] = f"{sub & 0xFFFF:04x}"
            out["pci"]["subsystem_id"] = f"{sub >> 16:04x}"
        from .host.pci import walk_ext_capabilities

        caps = await walk_ext_capabilities(config)
        out["pci"]["ext_capabilities"] = [f"{c.cap_id:04x}@{c.offset:#x}" for c in caps]
        dsn = [c for c in caps if c.cap_id == _DSN_CAP]
        if dsn:
            low = await config.read32(dsn[0].offset + 4)
            high = await config.read32(dsn[0].offset + 8)
            out["dsn"] = f"{high:08x}{low:08x}"
        else:
            notes.append("no Device Serial Number capability")
    except Exception as exc:
        notes.append(f"configuration space: {type(exc).__name__}: {exc}")


def _cert_entry(cert: Any) -> dict[str, Any]:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "sha384": hashlib.sha384(cert.public_bytes(Encoding.DER)).hexdigest(),
        "spki_sha384": hashlib.sha384(spki).hexdigest(),
    }


async def _spdm(ctx: VectorContext, out: dict[str, Any], notes: list[str]) -> None:
    from .codec import spdm as S

    if not ({"spdm", "doe"} & ctx.provides):
        notes.append(f"rig {ctx.rig_name} provides no DOE/SPDM: no SPDM identity")
        return
    if "spdm" not in ctx.provides:
        notes.append("rig has DOE but not SPDM: no SPDM identity")
        return
    try:
        req = await ctx.spdm()
    except Exception as exc:
        notes.append(f"SPDM: no transport ({type(exc).__name__}: {exc})")
        return
    req.trust_anchor = None  # record what the device presents; the spdm vectors judge it
    spdm: dict[str, Any] = {}
    out["spdm"] = spdm
    step = "VCA"
    try:
        await req.connect()
        alg = req.algorithms
        spdm["version"] = S.SpdmVersion(req.version).text
        spdm["responder_versions"] = [f"{e.major}.{e.minor}" for e in req.responder_versions]
        if req.capabilities is not None:
            spdm["capabilities"] = _flag_names(S.CapFlag, req.capabilities.flags)
        if alg is not None:
            spdm["algorithms"] = {
                "base_asym": _flag_names(S.BaseAsymAlgo, alg.base_asym_sel),
                "base_hash": _flag_names(S.BaseHashAlgo, alg.base_hash_sel),
                "measurement_hash": _flag_names(S.MeasurementHashAlgo, alg.measurement_hash_algo),
                "dhe": _flag_names(S.DheGroup, int(alg.dhe_group)),
                "aead": _flag_names(S.AeadSuite, int(alg.aead_suite)),
                "key_schedule": _flag_names(S.KeySchedule, int(alg.key_schedule)),
            }
        step = "DIGESTS"
        digests = await req.get_digests()
        slots = [s for s in range(8) if digests.slot_mask >> s & 1]
        spdm["slots"] = {}
        for slot, digest in zip(slots, digests.digests, strict=False):
            step = f"CERTIFICATE slot {slot}"
            entry: dict[str, Any] = {"chain_digest": digest.hex()}
            spdm["slots"][str(slot)] = entry
            await req.get_certificate(slot)
            entry["certificates"] = [_cert_entry(c) for c in req.certificates]
        step = "MEASUREMENTS"
        if req.capabilities is not None and req.capabilities.flags & (
            S.CapFlag.MEAS_NO_SIG | S.CapFlag.MEAS_SIG
        ):
            meas = await req.get_measurements(signed=False, operation=0xFF)
            spdm["measurements"] = [_measurement(b, out) for b in meas.blocks]
        else:
            notes.append("the device does not advertise MEAS_CAP: no measurements")
    except Exception as exc:
        notes.append(f"SPDM {step}: {type(exc).__name__}: {exc}")


def _measurement(block: Any, out: dict[str, Any]) -> dict[str, Any]:
    from .codec.spdm import DmtfMeasurementType

    try:
        kind = DmtfMeasurementType(block.value_type).name.lower()
    except ValueError:
        kind = f"type {block.value_type:#x}"
    entry: dict[str, Any] = {"index": block.index, "type": kind, "raw": bool(block.raw)}
    if block.raw:
        entry["sha384"] = hashlib.sha384(block.value).hexdigest()
        if block.value_type == DmtfMeasurementType.VERSION:
            text = block.value.decode("ascii", "replace").strip("\x00 ")
            entry["text"] = text[:200]
            out.setdefault("firmware_version", text[:200])
    else:
        entry["digest"] = block.value.hex()
    return entry


async def probe(ctx: VectorContext) -> dict[str, Any]:
    """Everything the rig lets us learn about the device; ``notes`` says what it could not."""
    out: dict[str, Any] = {}
    notes: list[str] = []
    await _config_ids(ctx, out, notes)
    await _spdm(ctx, out, notes)
    out["notes"] = notes
    return out


async def _identity(ctx: VectorContext) -> None:
    ctx.facts["identity"] = await probe(ctx)


#: The probe as a vector (not in any suite): each backend runs it as it runs vectors.
IDENTITY_VECTOR = vector(
    "hil.identity",
    title="What device this rig reaches (run.json's identity; not a verdict)",
    spec="PCIe 6.x §7.5.1, §7.9.3; DSP0274 GET_VERSION..MEASUREMENTS",
    needs=(),
)(_identity)


def device_key(device: dict[str, Any]) -> str | None:
    """A stable key for the device: IDs, serial number, slot-0 leaf public key digest."""
    pci = device.get("pci") or {}
    ids = [
        pci.get(k)
        for k in (
            "vendor_id",
            "device_id",
            "subsystem_vendor_id",
            "subsystem_id",
            "revision_id",
            "class_code",
        )
    ]
    slot0 = ((device.get("spdm") or {}).get("slots") or {}).get("0") or {}
    certs = slot0.get("certificates") or []
    # The leaf's public key, not its DER: a device re-issued the same key (or a test PKI that
    # signs afresh each run) is the same device.
    leaf = certs[-1].get("spki_sha384") if certs else None
    parts = {"ids": ids, "dsn": device.get("dsn"), "leaf": leaf}
    if not any(ids) and not parts["dsn"] and not leaf:
        return None
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def identify(backend: Backend) -> dict[str, Any]:
    """The device behind ``backend``'s rig, learnt by running the probe once.  Never raises."""
    device: dict[str, Any] = {}
    runner = backend
    if backend.rig.kind == "sim":
        # A simulated rig loads vectors by module name in the simulator; the probe runs beside
        # the suite, so on a copy of the backend that names the probe's module only.
        runner = copy.copy(backend)
        runner.vector_modules = [__name__]
    try:
        with tempfile.TemporaryDirectory(prefix="hil-identity-") as tmp:
            result = runner.run_vector(IDENTITY_VECTOR, artifacts_dir=Path(tmp), waves=False)
        device = dict(result.facts.get("identity") or {})
        if result.outcome is not Outcome.PASS or not device:
            first = (result.message or "no result").splitlines()[0][:300]
            device.setdefault("notes", []).append(f"identity probe {result.outcome}: {first}")
    except Exception as exc:  # identity never fails a run
        device.setdefault("notes", []).append(f"identity probe failed: {type(exc).__name__}: {exc}")
    device["key"] = device_key(device)
    return device


def host_side(backend: Backend) -> dict[str, Any]:
    """What did the testing: kernel, TSM provider, HDL build, peer (hil's version and SHA are
    in run.json already)."""
    rig = backend.rig
    out: dict[str, Any] = {"kernel_release": platform.release(), "machine": platform.machine()}
    try:
        info = backend.info()
    except Exception as exc:
        info = {}
        out["note"] = f"backend info: {type(exc).__name__}: {exc}"
    for key in ("hdl_build", "hdl_top", "peer", "bdf", "simulator", "simulator_version"):
        if info.get(key):
            out[key] = info[key]
    if rig.kind == "virtual" and "hdl_build" not in out:
        try:
            from .sim.simulation import Simulation

            sim = Simulation(rig).info()
            out.update({k: sim[k] for k in ("hdl_build", "hdl_top") if sim.get(k)})
        except Exception as exc:
            out["hdl_note"] = f"{type(exc).__name__}: {exc}"
    if rig.kind in ("lab", "virtual"):
        try:
            from .lab.tsm import KernelTsm

            root = Path(rig.lab.get("sysfs_root", "/sys"))
            virtual = getattr(backend, "virtual", None)
            if virtual is not None:
                root = virtual.root
            tsm = KernelTsm(str(info.get("bdf") or rig.lab.get("bdf", "0000:01:00.0")), root)
            out["tsm"] = [{"name": n, "pci_mode": tsm.pci_mode(n)} for n in tsm.tsms()]
            if rig.settings.get("tsm"):
                out["tsm_setting"] = rig.settings["tsm"]
        except Exception as exc:
            out["tsm_note"] = f"{type(exc).__name__}: {exc}"
    return out
