"""IDE and TDISP figures through the simulated endpoint, on this machine.

    python benchmarks/bench_ide.py

Runs the ``ide.*`` vectors and the TDISP flows with traffic on the default simulated rig, one
simulator at a time, and prints for each: its wall time (the vector itself, start-up and HDL
enumeration excluded), the simulated time, the configuration accesses and the DOE traffic it
needed; then the protected round trip (a 256-byte IDE MWr and MRd) in simulated time and
clocks, plain and under each configuration the endpoint advertises (PCRC, Link IDE, PHE), and
an aggregated unit of four writes followed by a read, and the device's own 256-byte IDE write
(its DMA engine) from the first register write to the root port.
The engine's own throughput is in ``bench_aes_gcm.py``.
"""

from __future__ import annotations

from _vectors import measurements, run_vectors

CLOCK_NS = 4.0  # rigs/sim-verilator.toml clock_period_ns


def main() -> None:
    keyword = "ide. or tdisp.flow or tdisp.run"
    wall, records = run_vectors(keyword)
    print(f"{len(records)} vectors ({keyword!r}) in {wall:.1f} s with -n 1, start-up included")
    print(f"{'vector':40} {'outcome':8} {'wall s':>7} {'sim us':>8} {'cfg acc':>8} {'DOE B':>7}")
    for vid, rec in sorted(records.items()):
        m = measurements(rec)
        print(
            f"{vid:40} {rec['outcome']:8} {rec['duration_s']:7.2f} "
            f"{m.get('sim_time', 0) * 1e6:8.1f} {int(m.get('config_accesses', 0)):8d} "
            f"{int(m.get('doe_bytes', 0)):7d}"
        )
    figures = (
        (
            "round_trip_256B_ns",
            "protected 256-byte write + read round trip",
            (
                "ide.traffic.protected_rw",
                "ide.traffic.protected_rw.pcrc",
                "ide.traffic.protected_rw.link",
                "ide.traffic.protected_rw.phe",
                "ide.traffic.protected_rw.aggregation",
            ),
        ),
        (
            "device_write_256B_ns",
            "the device's own 256-byte IDE write, DMA registers written to TLP at the root port",
            (
                "ide.requests.address_association",
                "ide.requests.address_association.pcrc",
                "ide.requests.address_association.phe",
            ),
        ),
    )
    for name, what, vids in figures:
        for vid in vids:
            rt = measurements(records[vid]).get(name) if vid in records else None
            if rt is not None:
                print(
                    f"{what} ({vid}): {rt:.0f} ns of device time ({rt / CLOCK_NS:.0f} clocks at "
                    f"{CLOCK_NS} ns)"
                )
    if "ide.aggregation.units_carried" in records:
        rt = measurements(records["ide.aggregation.units_carried"]).get("unit_of_4_then_read_ns")
        if rt is not None:
            print(
                f"aggregated unit of four 16-byte writes, then a 16-byte read: {rt:.0f} ns of "
                f"device time ({rt / CLOCK_NS:.0f} clocks)"
            )


if __name__ == "__main__":
    main()
