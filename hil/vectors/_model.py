"""What a vector is, and what it is given when it runs."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from ..codec import spdm as S
from ..codec.tdisp import InterfaceId
from ..errors import DeviceFailure, NotApplicable, RigConfigError
from ..host.doe import DoeMailbox
from ..host.pci import find_ext_capabilities
from ..host.spdm import ChainCache, SpdmRequester
from ..pki import Identity, IdentityError
from ..transport import ConfigSpace, DoeTransport, Timebase

__all__ = [
    "KNOWN_NEEDS",
    "Measurement",
    "Vector",
    "VectorContext",
    "VectorFn",
    "vector",
]

#: Every need a vector may declare.  A rig lists those it provides.
KNOWN_NEEDS = frozenset(
    {
        "config",  # read32/write32 of the function's configuration space
        "config_partial",  # sub-DW configuration writes
        "doe",  # a DOE mailbox reachable through config space
        "spdm",
        "ide_km",
        "ide_traffic",
        "dma",  # a way to make the device send Memory Writes of its own (a DMA engine's controls)
        "tdisp",
        "tsm",
        "power",
        "telemetry",
    }
)

VectorFn = Callable[["VectorContext"], Awaitable[None]]


@dataclass(frozen=True)
class Vector:
    """One check, written once: an async function and what it is about."""

    id: str
    title: str
    spec: str
    needs: frozenset[str]
    fn: VectorFn = field(compare=False, repr=False)

    def __post_init__(self) -> None:
        parts = self.id.split(".")
        if len(parts) < 2 or not all(p and p.replace("_", "").isalnum() for p in parts):
            raise ValueError(f"vector id {self.id!r} is not dotted lower_snake words")
        unknown = self.needs - KNOWN_NEEDS
        if unknown:
            raise ValueError(f"vector {self.id}: unknown needs {sorted(unknown)}")

    @property
    def group(self) -> str:
        return self.id.split(".", 1)[0]


def vector(id: str, *, title: str, spec: str, needs: Iterable[str]) -> Callable[[VectorFn], Vector]:
    """Decorate an async function ``fn(ctx)`` as a :class:`Vector`.  Nothing is registered."""

    def wrap(fn: VectorFn) -> Vector:
        return Vector(id=id, title=title, spec=spec, needs=frozenset(needs), fn=fn)

    return wrap


@dataclass(frozen=True)
class Measurement:
    name: str
    value: float
    unit: str
    low: float | None = None
    high: float | None = None

    @property
    def ok(self) -> bool:
        if isinstance(self.value, float) and math.isnan(self.value):
            return False
        if self.low is not None and self.value < self.low:
            return False
        return not (self.high is not None and self.value > self.high)

    def verdict(self) -> str:
        """Why it is out of its limits, as ``name = 1 ms < 5 ms (low)``; empty when ok."""
        unit = f" {self.unit}" if self.unit else ""
        if isinstance(self.value, float) and math.isnan(self.value):
            return f"{self.name} is not a number"
        if self.low is not None and self.value < self.low:
            return f"{self.name} = {self.value:g}{unit} < {self.low:g}{unit} (low)"
        if self.high is not None and self.value > self.high:
            return f"{self.name} = {self.value:g}{unit} > {self.high:g}{unit} (high)"
        return ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "low": self.low,
            "high": self.high,
            "ok": self.ok,
        }


class VectorContext:
    """What a running vector can reach.  Built by the rig; the vector never knows which rig."""

    def __init__(
        self,
        *,
        rig_name: str,
        rig_kind: str,
        provides: frozenset[str],
        timebase: Timebase,
        config: ConfigSpace | None = None,
        settings: dict[str, Any] | None = None,
        log: logging.Logger | None = None,
        doe_transport: Callable[[], Awaitable[DoeTransport]] | None = None,
        resources: dict[str, Any] | None = None,
    ) -> None:
        self.rig_name = rig_name
        self.rig_kind = rig_kind
        self.provides = provides
        self.timebase = timebase
        self._config = config
        self._doe_transport = doe_transport
        self._resources = dict(resources or {})
        self.settings = dict(settings or {})
        self.log = log or logging.getLogger("hil.vector")
        self.measurements: list[Measurement] = []
        self.mailboxes: list[DoeMailbox] = []  # those doe() made, for the backend's figures
        self.artifacts: list[str] = []
        #: What the vector learnt about the device, JSON values (the run's identity probe).
        self.facts: dict[str, Any] = {}

    # -- what the rig gives ---------------------------------------------------------------------
    @property
    def config(self) -> ConfigSpace:
        if self._config is None:
            raise NotApplicable(f"rig {self.rig_name} has no configuration-space access")
        return self._config

    @property
    def config_if_any(self) -> ConfigSpace | None:
        """Configuration space where the rig has it, None where it does not (a socket rig):
        for vectors whose protocol checks do not depend on it (IDE_KM and TDISP messaging)."""
        return self._config

    def resource(self, name: str) -> Any:
        """A rig resource beyond config space (``tsm``, ``power``, ``serial``...)."""
        if name not in self._resources:
            raise NotApplicable(f"rig {self.rig_name} has no {name}")
        return self._resources[name]

    def interface_id(self) -> InterfaceId:
        """The TDISP INTERFACE_ID of the function under test (its FUNCTION_ID, PCIe §11.2).

        From the rig setting ``function_id`` (the 32-bit FUNCTION_ID: bits 15:0 Requester ID,
        23:16 segment, 24 segment valid; needed where nothing enumerates the device, e.g. an
        spdm-socket rig), else the backend's ``function_id`` resource (the Requester ID the
        host enumerated), else the Requester ID of the rig's ``bdf`` resource.
        """
        value = self.settings.get("function_id")
        if value is None:
            value = self._resources.get("function_id")
        if value is None and "bdf" in self._resources:
            value = self._resources["bdf"].requester_id
        if value is None:
            raise NotApplicable(f"rig {self.rig_name} knows no function_id for TDISP")
        try:
            fid = int(value, 0) if isinstance(value, str) else int(value)
            return InterfaceId(fid & 0xFFFF, (fid >> 16) & 0xFF, bool(fid >> 24 & 1))
        except (TypeError, ValueError) as exc:
            raise RigConfigError(f"rig {self.rig_name}: function_id {value!r}: {exc}") from None

    @property
    def ide_km_port_index(self) -> int:
        """IDE_KM PortIndex of the port under test (rig setting ``ide_km_port_index``,
        default 0: the port hosting the responder, as on every endpoint)."""
        return int(self.settings.get("ide_km_port_index", 0))

    async def doe(self, *, init: bool = True) -> DoeMailbox:
        """The function's first DOE mailbox, found by walking the extended capabilities."""
        check = getattr(self.config, "check_doe_free", None)
        if check is not None:
            check()  # never touch a mailbox the kernel's TSM is using
        caps = await find_ext_capabilities(self.config, 0x002E)
        if not caps:
            raise DeviceFailure("no DOE extended capability (ID 0x002E) in the capability list")
        mbx = DoeMailbox(
            self.config,
            caps[0].offset,
            self.timebase,
            timeout_s=float(self.settings.get("doe_timeout_s", 1.0)),
            poll_interval_s=float(self.settings.get("doe_poll_interval_s", 1 / 128)),
            idle=self._resources.get("device_idle"),
        )
        self.mailboxes.append(mbx)
        if init:
            await mbx.init()
        return mbx

    async def doe_transport(self) -> DoeTransport:
        """Where DOE objects go on this rig: the function's DOE mailbox by default."""
        if self._doe_transport is not None:
            return await self._doe_transport()
        return await self.doe()

    def trust_anchor(self) -> x509.Certificate | None:
        """The root the rig trusts (settings ``trust_anchor``: "test-pki" or a PEM/DER path)."""
        value = self.settings.get("trust_anchor")
        if not value:
            return None
        if value == "test-pki":
            from ..firmware import test_pki

            return test_pki().trust_anchor
        data = Path(value).read_bytes()
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)

    def requester_identity(self) -> Identity | None:
        """The requester's own chain and key for mutual authentication, if the rig names them
        (settings ``requester_cert_chain`` and ``requester_key``: PEM or DER files)."""
        chain = self.settings.get("requester_cert_chain")
        key = self.settings.get("requester_key")
        if not chain and not key:
            return None
        if not (chain and key):
            raise RigConfigError(
                "requester_cert_chain and requester_key go together: one is set, not the other"
            )
        try:
            return Identity.load(chain, key)
        except IdentityError as exc:
            raise RigConfigError(f"requester identity ({chain}, {key}): {exc}") from None

    async def spdm(self) -> SpdmRequester:
        """A fresh SPDM requester on this rig's DOE transport, trusting the rig's anchor, with
        the rig's requester identity (mutual authentication) when it names one."""
        cache = self.settings.get("chain_cache_dir")
        req = SpdmRequester(
            await self.doe_transport(),
            trust_anchor=self.trust_anchor(),
            sleep=self.sleep,
            identity=self.requester_identity(),
            chain_cache=ChainCache(Path(cache)) if cache else None,
        )
        pinned = self.settings.get("spdm_versions")
        if pinned:
            by_text = {S.SpdmVersion(v).text: v for v in (0x12, 0x13)}
            try:
                req.versions = tuple(by_text[t] for t in pinned)
            except KeyError as exc:
                raise RigConfigError(
                    f"settings spdm_versions {pinned!r}: {exc} is not one of 1.2, 1.3"
                ) from None
        return req

    async def sleep(self, seconds: float) -> None:
        await self.timebase.sleep(seconds)

    # -- what the vector reports ----------------------------------------------------------------
    def measure(
        self,
        name: str,
        value: float,
        unit: str = "",
        *,
        low: float | None = None,
        high: float | None = None,
    ) -> Measurement:
        m = Measurement(name, value, unit, low, high)
        self.measurements.append(m)
        return m

    def expect(self, condition: object, message: str) -> None:
        """Fail the vector (the device broke the spec) unless ``condition`` holds."""
        if not condition:
            raise DeviceFailure(message)
