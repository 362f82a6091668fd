"""Configuration-space structure vectors (PCIe 6.x §7.6)."""

from __future__ import annotations

import itertools

from ..host.pci import EXT_CAP_START, walk_ext_capabilities
from ._model import VectorContext, vector


@vector(
    "pcie.ext_caps.well_formed",
    title="The extended capability list walks from 0x100 to its end and holds the DOE capability",
    spec="PCIe 6.x §7.6.3, §7.9.24.1",
    needs={"config"},
)
async def ext_caps_well_formed(ctx: VectorContext) -> None:
    caps = await walk_ext_capabilities(ctx.config)
    ctx.measure("ext_capabilities", len(caps), "", low=1)
    ctx.expect(caps and caps[0].offset == EXT_CAP_START, "no extended capability at 0x100")
    for cap in caps:
        ctx.expect(cap.version != 0, f"capability {cap.cap_id:#06x} at {cap.offset:#x}: version 0")
    offsets = [c.offset for c in caps]
    # Capabilities must not overlap: each one's header is at least 4 bytes long.
    ordered = sorted(offsets)
    ctx.expect(
        all(b - a >= 4 for a, b in itertools.pairwise(ordered)),
        f"overlapping capabilities at {[hex(o) for o in offsets]}",
    )
    doe = [c for c in caps if c.cap_id == 0x002E]
    ctx.expect(doe, f"no DOE capability among {[f'{c.cap_id:#06x}' for c in caps]}")
    if "cap_chain" in ctx.settings:
        want = [int(x, 16) for x in ctx.settings["cap_chain"]]
        got = [c.cap_id for c in caps]
        ctx.expect(
            got == want,
            f"extended capability IDs {[f'{c:04x}' for c in got]} differ from the rig's "
            f"cap_chain {[f'{c:04x}' for c in want]}",
        )
