"""Rig files: where vectors run, described as data (``rigs/<name>.toml``).

A rig file holds no secrets.  Layout::

    [rig]
    name = "sim-verilator"          # defaults to the file's stem
    kind = "sim"                    # sim | fake | spdm-socket
    description = "..."
    provides = ["config", "doe"]    # the needs this rig meets
    firmware = "dsm"                # what serves the device's DSM port: "dsm" or "none"

    [sim]                           # kind = "sim" or "virtual"
    top = "hil_ep"                  # or "hil_fpga" (virtual only: the endpoint behind its UART)
    clock_period_ns = 4.0
    wall_timeout_s = 600
    parameters = { DOE_WR_DEPTH_DW = 1024 }

    [socket]                        # kind = "spdm-socket" only: a DMTF spdm-emu socket peer
    host = "127.0.0.1"
    port = 2323

    [fake]                          # kind = "fake" only: what its IDE Capability advertises
    max_port_index = 1
    selective_streams = 2

    [settings]                      # handed to every vector as ctx.settings
    doe_timeout_s = 1.0
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import RigConfigError
from .rig_schema import KIND_NEEDS, KINDS, SECTIONS, closest
from .vectors import KNOWN_NEEDS

__all__ = ["KINDS", "Rig", "find_rig", "list_rigs", "load_rig", "rig_dirs"]

#: What a simulated rig may simulate: the endpoint, or the FPGA top with its UART (whose
#: firmware the virtual rig's lab controller serves over a pseudo-terminal).
#: How a sim rig's configuration accesses reach the endpoint (hil.sim.harness).
CONFIG_PATHS = ("tlp", "cfg_ext")
SIM_TOPS = {"hil_ep": ("sim", "virtual"), "hil_fpga": ("virtual",)}
FIRMWARES = ("none", "dsm")


@dataclass(frozen=True)
class Rig:
    name: str
    kind: str
    path: Path | None
    description: str = ""
    provides: frozenset[str] = frozenset()
    firmware: str = "none"
    sim: dict[str, Any] = field(default_factory=dict)
    socket: dict[str, Any] = field(default_factory=dict)
    lab: dict[str, Any] = field(default_factory=dict)
    fake: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


def _fail(path: Path | str, message: str, line: int | None = None) -> RigConfigError:
    where = f"rig file {path}" + (f", line {line}" if line else "")
    return RigConfigError(f"{where}: {message}")


def _line_of(text: str, section: str, key: str | None = None) -> int | None:
    """The line of ``[section]`` (or of ``key`` in it) in the file, for messages."""
    current = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("[") and not line.startswith("[["):
            current = line.strip("[] \t").split("]")[0].strip()
            if key is None and current == section:
                return number
            continue
        if current == section and key is not None:
            name = line.split("=", 1)[0].strip().strip('"')
            if "=" in line and name == key:
                return number
    return None


def _check_keys(path: Path, text: str, data: dict[str, Any], kind: str) -> None:
    """Every section and key known, of its type, and meant for this kind of rig."""
    for section, table in data.items():
        if section not in SECTIONS:
            raise _fail(
                path,
                f"unknown section [{section}]{closest(section, list(SECTIONS))} "
                f"(sections: {', '.join(SECTIONS)})",
                _line_of(text, section),
            )
        if not isinstance(table, dict):
            raise _fail(path, f"[{section}] must be a table", _line_of(text, section))
        keys = {k.name: k for k in SECTIONS[section]}
        for name, value in table.items():
            line = _line_of(text, section, name)
            key = keys.get(name)
            if key is None:
                raise _fail(
                    path,
                    f"[{section}] {name} is not a key of this section{closest(name, list(keys))} "
                    f"(keys: {', '.join(keys)}; see docs/rig-files.md)",
                    line,
                )
            if not key.accepts(value):
                raise _fail(path, f"[{section}] {name} = {value!r} is not a {key.type}", line)
            if kind in KINDS and kind not in key.kinds:
                raise _fail(
                    path,
                    f"[{section}] {name} means nothing for a {kind} rig "
                    f"(only for {', '.join(key.kinds)})",
                    line,
                )


def _resolve_paths(path: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """File names in [settings] are relative to the rig file's folder."""
    out = dict(settings)
    for key in SECTIONS["settings"]:
        value = out.get(key.name)
        if key.path and isinstance(value, str) and value and value != "test-pki":
            out[key.name] = str((path.parent / Path(value).expanduser()).resolve())
    return out


def parse_rig(text: str, path: Path) -> Rig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _fail(path, f"not valid TOML: {exc}") from None
    rig = data.get("rig")
    _check_keys(path, text, data, str(rig.get("kind")) if isinstance(rig, dict) else "")
    if not isinstance(rig, dict):
        raise _fail(path, "missing the [rig] table")
    kind = rig.get("kind")
    if kind not in KINDS:
        raise _fail(path, f"[rig] kind = {kind!r}; expected one of {', '.join(KINDS)}")
    name = rig.get("name", path.stem)
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise _fail(path, f"[rig] name {name!r} is not a plain name")
    provides = rig.get("provides", [])
    if not isinstance(provides, list) or not all(isinstance(p, str) for p in provides):
        raise _fail(path, "[rig] provides must be a list of strings")
    unknown = set(provides) - KNOWN_NEEDS
    if unknown:
        raise _fail(
            path,
            f"[rig] provides unknown needs {sorted(unknown)} "
            f"(needs: {', '.join(sorted(KNOWN_NEEDS))})",
            _line_of(text, "rig", "provides"),
        )
    beyond = set(provides) - KIND_NEEDS[kind]
    if beyond:
        raise _fail(
            path,
            f"[rig] provides {sorted(beyond)}, which a {kind} rig cannot meet "
            f"(a {kind} rig can provide {', '.join(sorted(KIND_NEEDS[kind]))})",
            _line_of(text, "rig", "provides"),
        )
    firmware = rig.get("firmware", "none")
    if firmware not in FIRMWARES:
        raise _fail(path, f"[rig] firmware = {firmware!r}; expected one of {', '.join(FIRMWARES)}")
    sim = data.get("sim", {})
    for key in ("clock_period_ns", "wall_timeout_s", "dsm_latency_ns"):
        if key in sim and not (isinstance(sim[key], int | float) and sim[key] > 0):
            raise _fail(path, f"[sim] {key} must be a positive number")
    top = sim.get("top", "hil_ep")
    if "top" in sim and (top not in SIM_TOPS or kind not in SIM_TOPS[top]):
        tops = [t for t, kinds in SIM_TOPS.items() if kind in kinds]
        raise _fail(path, f"[sim] top = {top!r}; a {kind} rig simulates one of {tops}")
    if sim.get("config_path", "tlp") not in CONFIG_PATHS:
        raise _fail(
            path, f"[sim] config_path = {sim['config_path']!r}; one of {', '.join(CONFIG_PATHS)}"
        )
    params = sim.get("parameters", {})
    if not isinstance(params, dict) or not all(isinstance(v, int) for v in params.values()):
        raise _fail(path, "[sim] parameters must map HDL parameter names to integers")
    sock = data.get("socket", {})
    if (kind == "spdm-socket") != bool(sock):
        raise _fail(path, "[socket] is required for kind = 'spdm-socket' and only for it")
    if sock:
        port = sock.get("port", 2323)
        if not isinstance(port, int) or not 0 < port < 65536:
            raise _fail(path, f"[socket] port {port!r} is not a TCP port")
        if not isinstance(sock.get("host", "127.0.0.1"), str):
            raise _fail(path, "[socket] host must be a string")
    lab = data.get("lab", {})
    if kind in ("lab", "virtual"):
        from .lab.bdf import Bdf

        try:
            Bdf.parse(lab.get("bdf", "0000:01:00.0"))
        except RigConfigError as exc:
            raise _fail(path, f"[lab] bdf: {exc}") from None
    fake = data.get("fake", {})
    if fake:
        from .fake import fake_ide_cap

        try:
            fake_ide_cap(fake)
        except ValueError as exc:
            raise _fail(path, f"[fake] {exc}", _line_of(text, "fake")) from None
    settings = _resolve_paths(path, data.get("settings", {}))
    return Rig(
        name=name,
        kind=kind,
        path=path,
        description=str(rig.get("description", "")),
        provides=frozenset(provides),
        firmware=firmware,
        sim=sim,
        socket=sock,
        lab=lab,
        fake=fake,
        settings=settings,
    )


def load_rig(path: Path) -> Rig:
    try:
        text = path.read_text()
    except OSError as exc:
        raise _fail(path, f"cannot be read: {exc.strerror}") from None
    return parse_rig(text, path)


def rig_dirs() -> list[Path]:
    """Where rig files are looked for: $HIL_RIGS_DIR, ./rigs, then the source tree's rigs/."""
    dirs = []
    if env := os.environ.get("HIL_RIGS_DIR"):
        dirs.append(Path(env))
    dirs.append(Path.cwd() / "rigs")
    dirs.append(Path(__file__).resolve().parents[1] / "rigs")
    seen: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [s.resolve() for s in seen]:
            seen.append(d)
    return seen


def list_rigs() -> list[Rig | RigConfigError]:
    """Every rig file found, parsed; a broken one is listed as its error."""
    found: list[Rig | RigConfigError] = []
    names: set[str] = set()
    for d in rig_dirs():
        for path in sorted(d.glob("*.toml")):
            try:
                rig = load_rig(path)
            except RigConfigError as exc:
                found.append(exc)
                continue
            if rig.name not in names:
                names.add(rig.name)
                found.append(rig)
    return found


def find_rig(name_or_path: str) -> Rig:
    """A rig by name (searched in :func:`rig_dirs`) or by the path of its file."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or os.sep in name_or_path:
        if not candidate.exists():
            raise RigConfigError(f"no rig file at {candidate}")
        return load_rig(candidate)
    for d in rig_dirs():
        for path in sorted(d.glob("*.toml")):
            if path.stem == name_or_path:
                return load_rig(path)
    for d in rig_dirs():
        for path in sorted(d.glob("*.toml")):
            try:
                rig = load_rig(path)
            except RigConfigError:
                continue
            if rig.name == name_or_path:
                return rig
    where = ", ".join(str(d) for d in rig_dirs()) or "(no rigs/ directory found)"
    known = sorted({r.name for r in list_rigs() if isinstance(r, Rig)})
    hint = closest(name_or_path, known)
    raise RigConfigError(
        f"no rig named {name_or_path!r}{hint} (rigs: {', '.join(known) or 'none'}; "
        f"looked in {where})"
    )
