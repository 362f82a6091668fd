"""What a rig file may say: every section and key, its type, default and meaning.

:func:`hil.rigs.parse_rig` checks a rig file against this, and ``hil regen`` writes the
reference table ``docs/rig-files.md`` from it, so the documentation cannot drift from the code.
A new setting is one more :class:`Key` here.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

__all__ = [
    "KINDS",
    "KIND_NEEDS",
    "SECTIONS",
    "Key",
    "closest",
    "reference_markdown",
]

KINDS = ("sim", "fake", "spdm-socket", "lab", "virtual")

#: The needs each kind of rig can meet at all; a rig file may claim a subset.
KIND_NEEDS: dict[str, frozenset[str]] = {
    "sim": frozenset(
        {"config", "config_partial", "doe", "spdm", "ide_km", "ide_traffic", "dma", "tdisp"}
    ),
    "fake": frozenset(
        {"config", "config_partial", "doe", "spdm", "ide_km", "ide_traffic", "dma", "tdisp"}
    ),
    "spdm-socket": frozenset({"spdm", "ide_km", "tdisp"}),
    "lab": frozenset(
        {"config", "config_partial", "doe", "spdm", "ide_km", "tdisp", "tsm", "power", "telemetry"}
    ),
    "virtual": frozenset(
        {"config", "config_partial", "doe", "spdm", "ide_km", "tdisp", "tsm", "power", "telemetry"}
    ),
}


@dataclass(frozen=True)
class Key:
    """One key of a section."""

    name: str
    # "str", "int", "float" (an int is accepted), "bool", "list[str]", "int or list[int]",
    # "table"
    type: str
    default: Any
    meaning: str
    kinds: tuple[str, ...] = KINDS  # the rig kinds it means something for
    path: bool = False  # a file name: relative to the rig file's folder

    def accepts(self, value: Any) -> bool:
        match self.type:
            case "str":
                return isinstance(value, str)
            case "int":
                return isinstance(value, int) and not isinstance(value, bool)
            case "float":
                return isinstance(value, int | float) and not isinstance(value, bool)
            case "bool":
                return isinstance(value, bool)
            case "list[str]":
                return isinstance(value, list) and all(isinstance(v, str) for v in value)
            case "int or list[int]":
                values = value if isinstance(value, list) else [value]
                return all(isinstance(v, int) and not isinstance(v, bool) for v in values)
            case "table":
                return isinstance(value, dict)
        raise AssertionError(self.type)


_SIM = ("sim", "virtual")
_LAB = ("lab", "virtual")
_DEVICE = ("sim", "fake", "lab", "virtual")  # kinds with a configuration space

SECTIONS: dict[str, tuple[Key, ...]] = {
    "rig": (
        Key("name", "str", "the file's stem", "the rig's name (`hil run --rig NAME`)"),
        Key("kind", "str", None, "one of " + ", ".join(f"`{k}`" for k in KINDS) + " (required)"),
        Key("description", "str", "", "one line for `hil rigs`"),
        Key(
            "provides",
            "list[str]",
            [],
            "the needs this rig meets (vectors needing anything else are n/a); a kind can "
            "meet only its own: "
            + "; ".join(f"{k}: {', '.join(sorted(v))}" for k, v in KIND_NEEDS.items()),
        ),
        Key("firmware", "str", "none", "what serves the device's DSM port: `dsm` or `none`"),
    ),
    "sim": (
        Key("top", "str", "hil_ep", "the RTL top: `hil_ep`, or `hil_fpga` (virtual only)", _SIM),
        Key("clock_period_ns", "float", 4.0, "the simulated clock period", _SIM),
        Key("wall_timeout_s", "float", 600, "wall-clock limit of one simulator process", _SIM),
        Key("dsm_latency_ns", "float", 0, "firmware answer latency in device time", _SIM),
        Key(
            "config_path",
            "str",
            "tlp",
            "how configuration accesses reach the endpoint: `tlp`, CfgRd0/CfgWr0 TLPs from "
            "cocotbext-pcie's root complex through the hard-IP model; `cfg_ext`, straight into "
            "the hard-IP model's configuration space and the HDL's `cfg_ext_*` (no TLP layer; "
            "enumeration still uses TLPs)",
            _SIM,
        ),
        Key("parameters", "table", {}, "HDL parameters: NAME = integer", _SIM),
    ),
    "socket": (
        Key("host", "str", "127.0.0.1", "the responder's address", ("spdm-socket",)),
        Key("port", "int", 2323, "the responder's TCP port", ("spdm-socket",)),
        Key("timeout_s", "float", 10.0, "how long to wait for one answer", ("spdm-socket",)),
    ),
    "lab": (
        Key("bdf", "str", "0000:01:00.0", "the device's PCI address (`lspci -D`)", _LAB),
        Key("sysfs_root", "str", "/sys", "where sysfs is (a test tree, a FUSE mount)", _LAB),
        Key("lock_dir", "str", "/run/lock/hil", "where the rig's lock file lives", _LAB),
        Key("serial", "str", "", "the board's UART (`/dev/ttyUSB1`)", _LAB),
        Key("baudrate", "int", 115200, "the UART's rate; must match the board build", _LAB),
        Key("visa_resource", "str", "", "the bench supply's VISA resource string", _LAB),
        Key("visa_library", "str", "@py", "the pyvisa backend (`@py`, `@sim-psu`, ...)", _LAB),
    ),
    "fake": (
        Key(
            "max_port_index",
            "int",
            0,
            "the IDE_KM MaxPortIndex its firmware presents (PortIndex 00h and this one)",
            ("fake",),
        ),
        Key(
            "selective_streams",
            "int",
            2,
            "Selective IDE Streams in its IDE Capability (2-8)",
            ("fake",),
        ),
        Key(
            "link_tcs",
            "int",
            0,
            "Link IDE Stream register blocks (TCs) in its IDE Capability (0-8, with "
            "`selective_streams` + `link_tcs` <= 8); its TLP path carries Link IDE on them",
            ("fake",),
        ),
        Key(
            "addr_blocks",
            "int or list[int]",
            1,
            "IDE Address Association blocks per Selective stream (1-15): one count for every "
            "stream, or a list of one per stream (`selective_streams` long; each Selective "
            "IDE Stream block has its own count, PCIe 6.x §7.9.26.5.1)",
            ("fake",),
        ),
        Key(
            "ide_features",
            "list[str]",
            [],
            "optional IDE Capability bits it advertises: `phe`, `aggregation`, `pcrc`, "
            "`config_requests` (its TLP path carries each: PCRC, PHE, aggregated units received, "
            "Configuration Requests as IDE TLPs)",
            ("fake",),
        ),
    ),
    "settings": (
        Key(
            "trust_anchor",
            "str",
            "",
            "the root certificate (PEM or DER) the device's chain must lead to, or `test-pki` "
            "for the project's test root; none: the chain is checked for form only",
            path=True,
        ),
        Key(
            "requester_cert_chain",
            "str",
            "",
            "the requester's own chain (PEM or DER, root first) for mutual authentication",
            path=True,
        ),
        Key("requester_key", "str", "", "the requester's private key (PEM or DER)", path=True),
        Key(
            "spdm_versions",
            "list[str]",
            ["1.2", "1.3"],
            "the SPDM versions the requester offers (the highest both sides speak is used; "
            "vectors whose messages differ run at each)",
        ),
        Key(
            "function_id",
            "int",
            None,
            "the TDI's FUNCTION_ID on a socket rig (bits 15:0 Requester ID); PCIe rigs "
            "enumerate it",
        ),
        Key("ide_km_port_index", "int", 0, "IDE_KM PortIndex of the port under test"),
        Key("doe_timeout_s", "float", 1.0, "DOE response deadline (PCIe: 1 s)", _DEVICE),
        Key("doe_poll_interval_s", "float", 1 / 128, "DOE Status poll period", _DEVICE),
        Key("doe_quiet_s", "float", 0.01, "how long silence proves no answer", _DEVICE),
        Key("doe_max_object_dw", "int", 1024, "the mailbox's capacity, if known", _DEVICE),
        Key("doe_oversize_probe_dw", "int", 4096, "how far to write looking for Error", _DEVICE),
        Key("doe_back_to_back_rounds", "int", 4, "rounds of the back-to-back vector", _DEVICE),
        Key(
            "doe_features",
            "list[str]",
            [],
            "the DOE features the device should list, `VVVV:TT`",
            _DEVICE,
        ),
        Key(
            "cap_chain",
            "list[str]",
            [],
            "the extended capability IDs expected in order (hex, e.g. `002e`)",
            _DEVICE,
        ),
        Key("tlp_timeout_s", "float", 0.01, "how long to wait for a completion", ("sim",)),
        Key("flr_wait_s", "float", 0.1, "wait after Initiate FLR (PCIe: 100 ms)", _DEVICE),
        Key(
            "kernel_doe_timeout_s",
            "float",
            1.0,
            "the emulated host kernel's DOE deadline in wall time (Linux: 1 s); a simulated "
            "device behind a UART needs longer",
            ("virtual",),
        ),
        Key(
            "tsm",
            "str",
            "the first",
            "the TSM the tsm vectors connect through (`ls /sys/class/tsm`)",
            _LAB,
        ),
        Key("uart_timeout_s", "float", 1.0, "UART answer deadline", _LAB),
        Key("telemetry_timeout_s", "float", 2.0, "how long to wait for telemetry", _LAB),
    ),
}


def closest(word: str, choices: list[str]) -> str:
    """`; did you mean X?` for the nearest valid name, or nothing."""
    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""


def _fmt_default(key: Key) -> str:
    if key.default is None:
        return "—"
    if isinstance(key.default, float) and key.default and key.default < 0.01:
        return f"`{key.default:g}`"
    return (
        f"`{key.default!r}`"
        if not isinstance(key.default, str)
        else (f"`{key.default}`" if key.default else "—")
    )


def reference_markdown(header: str) -> str:
    """The rig-file reference: one table per section."""
    out = [
        header,
        "",
        "# Rig files",
        "",
        "A rig file (`rigs/NAME.toml`, or any path given to `--rig`) describes where vectors "
        "run. Every section and key is listed here; anything else is refused with the file, "
        "the line and the nearest valid key. Relative file names in `[settings]` are relative "
        "to the rig file. `hil run` looks for rig files in `$HIL_RIGS_DIR`, `./rigs` and the "
        "source tree's `rigs/`.",
        "",
    ]
    for section, keys in SECTIONS.items():
        out += [
            f"## [{section}]",
            "",
            "| key | type | default | kinds | meaning |",
            "|---|---|---|---|---|",
        ]
        for k in keys:
            kinds = "all" if k.kinds == KINDS else ", ".join(k.kinds)
            meaning = k.meaning.replace("|", "\\|")
            out.append(f"| `{k.name}` | {k.type} | {_fmt_default(k)} | {kinds} | {meaning} |")
        out.append("")
    return "\n".join(out)
