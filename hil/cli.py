"""The ``hil`` command: run, mutate, rigs, report, bundle, lint, synth, regen."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import RigConfigError, RigError
from .pki import IdentityError

if TYPE_CHECKING:
    from .shard import ShardSpec

__all__ = ["main"]


def _shard_args(args: argparse.Namespace) -> tuple[ShardSpec, str | None] | None:
    """``--shard K/N`` checked: (spec, group), None without it; ValueError saying what is
    wrong (a malformed K/N, no group to tie a real run's shards together)."""
    from .shard import GROUP_ENV, ShardSpec, ci_group

    if args.shard is None:
        if args.shard_group:
            raise ValueError("--shard-group needs --shard K/N")
        return None
    spec = ShardSpec.parse(args.shard)
    group = args.shard_group or ci_group()
    if not group and not args.list:
        raise ValueError(
            f"--shard {spec}: name the suite run the shards belong to with --shard-group NAME "
            f"(or run in CI: {', '.join(v for v, _ in GROUP_ENV)})"
        )
    return spec, group


def _cmd_run(args: argparse.Namespace) -> int:
    import pytest

    try:
        shard = _shard_args(args)
    except ValueError as exc:
        print(f"hil: {exc}", file=sys.stderr)
        return 2
    if args.list:
        return _list_vectors(args, shard)
    pytest_args = ["--rig", args.rig, "-p", "no:cacheprovider", "-qq", "-rN"]
    if args.verbose:
        pytest_args.append("-v")
    if args.k:
        pytest_args += ["-k", args.k]
    if args.n is not None and args.n != "0":
        pytest_args += ["-n", args.n]
    if args.results:
        pytest_args += ["--results", args.results]
    if args.waves:
        pytest_args.append("--waves")
    if args.vectors:
        pytest_args += ["--vectors", args.vectors]
    if shard is not None:
        pytest_args += ["--shard", str(shard[0]), "--shard-group", str(shard[1])]
    for option in ("trust_anchor", "requester_cert_chain", "requester_key", "peer"):
        value = getattr(args, option)
        if value:
            pytest_args += ["--" + option.replace("_", "-"), value]
    code = pytest.main(pytest_args)
    return int(code)


def _cmd_mutate(args: argparse.Namespace) -> int:
    """Each seeded device bug alone (a fake rig: firmware and fake hardware; a sim rig: HDL
    parameters): which vectors kill it; exit 1 if one lives."""
    import fnmatch
    import logging
    import time

    from . import mutants

    logging.disable(logging.WARNING)  # the mutants make the firmware log; the table is the output
    chosen = tuple(
        m for m in mutants.MUTANTS if not args.k or fnmatch.fnmatchcase(m.id, f"*{args.k}*")
    )
    if not chosen:
        print(f"hil: no mutant matches {args.k!r}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    results, baseline = mutants.run(chosen, rig=args.rig)
    print(mutants.table(results))
    survivors = [r.mutant.id for r in results if r.verdict == "SURVIVED"]
    print(
        f"{len(results)} mutants over {len(baseline)} passing vectors: "
        f"{sum(r.killed for r in results)} killed, "
        f"{sum(r.verdict == 'shadowed' for r in results)} shadowed, {len(survivors)} survived "
        f"in {time.perf_counter() - start:.1f} s"
    )
    from .rigs import find_rig

    if len(chosen) == len(mutants.MUTANTS) and find_rig(args.rig).kind == "fake":
        gaps = mutants.unnamed(baseline)
        print(f"passing vectors no mutant names: {', '.join(gaps) or 'none'}")
    if args.report:
        mutants.report(results, Path(args.report))
        print(f"report: {args.report}")
    return 1 if survivors else 0


def _list_vectors(args: argparse.Namespace, shard: tuple[ShardSpec, str | None] | None) -> int:
    """What ``hil run`` would run on the rig, and what it would say n/a to; writes nothing.
    With ``--shard K/N``: what that shard would run, from the same plan ``hil run`` makes."""
    import fnmatch

    from .pytest_plugin import select_ids
    from .rigs import find_rig
    from .vectors import load_suite, missing_needs

    rig = find_rig(args.rig)
    suite = load_suite([m for m in (args.vectors or "").split(",") if m.strip()])
    ids = list(suite)
    shard_line = ""
    if shard is not None:
        ids, shard_line = _shard_of(ids, args, rig.name, shard)
    if args.k:
        chosen = select_ids(ids, args.k)
        if chosen is None:  # a pytest expression: match it against the id's parts
            from _pytest.mark.expression import Expression

            expr = Expression.compile(args.k)
            chosen = {
                i
                for i in ids
                if expr.evaluate(
                    lambda name, i=i, **_: any(
                        fnmatch.fnmatchcase(part, f"*{name}*") for part in [i, *i.split(".")]
                    )
                )
            }
        ids = [i for i in ids if i in chosen]
    width = max([len(i) for i in ids] + [6])
    for vid in ids:
        missing = missing_needs(suite[vid], rig.provides)
        verdict = f"n/a (lacks {', '.join(sorted(missing))})" if missing else "runs"
        print(f"{vid:<{width}}  {verdict:<24}  {suite[vid].title}")
    runs = sum(1 for i in ids if not missing_needs(suite[i], rig.provides))
    print(f"{len(ids)} vectors on {rig.name}: {runs} run, {len(ids) - runs} n/a")
    if shard_line:
        print(shard_line)
    return 0


def _shard_of(
    ids: list[str], args: argparse.Namespace, rig: str, shard: tuple[ShardSpec, str | None]
) -> tuple[list[str], str]:
    """The ids shard K/N runs (before a -k expression, which pytest applies within it), and
    a line saying how it was planned."""
    import os

    from .pytest_plugin import select_ids
    from .shard import estimate_s, partition, recorded_durations

    spec, group = shard
    root = Path(args.results or os.environ.get("HIL_RESULTS") or "results").resolve()
    durations, runs = recorded_durations(root, rig, exclude_group=group)
    chosen = select_ids(ids, args.k or "")
    domain = [i for i in ids if chosen is None or i in chosen]
    shards = partition(domain, spec.n, durations)
    mine = shards[spec.k - 1]
    loads = ", ".join(f"{estimate_s(s, durations):.1f}" for s in shards)
    line = (
        f"shard {spec}: {len(mine)} of {len(domain)} vectors; estimated seconds per shard "
        f"{loads} (durations from {runs} earlier runs of {rig} under {root})"
    )
    return mine, line


def _spdm_versions(text: str) -> tuple[int, ...]:
    from .codec.spdm import SpdmVersion
    from .firmware.spdm_responder import SUPPORTED_VERSIONS

    by_text = {SpdmVersion(v).text: SpdmVersion(v) for v in SUPPORTED_VERSIONS}
    out = []
    for item in text.split(","):
        if item.strip() not in by_text:
            raise argparse.ArgumentTypeError(f"SPDM version {item!r}: one of {', '.join(by_text)}")
        out.append(by_text[item.strip()])
    return tuple(sorted(set(out)))


def _cmd_serve(args: argparse.Namespace) -> int:
    import logging

    from .rigs import find_rig
    from .serve import ServeOptions, serve_rig

    level = logging.WARNING if args.quiet else logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level, format="hil serve: %(message)s", stream=sys.stderr)

    rig = find_rig(args.rig)
    try:
        options = ServeOptions(
            cert_chain=Path(args.cert_chain) if args.cert_chain else None,
            key=Path(args.key) if args.key else None,
            function_id=args.function_id,
            ide_km_port_index=args.ide_km_port_index,
            ide_stream_id=args.ide_stream_id,
            spdm_versions=args.spdm_versions,
            heartbeat_period_s=ServeOptions.heartbeat_period_s
            if args.heartbeat_period is None
            else args.heartbeat_period,
            mut_auth=args.mut_auth,
            requester_trust_anchor=Path(args.requester_trust_anchor)
            if args.requester_trust_anchor
            else None,
            requester_cert_chain=Path(args.requester_cert_chain)
            if args.requester_cert_chain
            else None,
        )
        return serve_rig(rig, args.host, args.port, options)
    except (RigError, IdentityError) as exc:
        print(f"hil serve: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _cmd_rig(args: argparse.Namespace) -> int:
    from .lab.rig_daemon import rig_down, rig_up, running, state_dir
    from .rigs import find_rig

    if args.action == "up":
        state = rig_up(find_rig(args.name))
        print(f"{args.name} is up (process {state['pid']})")
        print(f"  sysfs root: {state['root']}")
        if state.get("uart"):
            print(f"  UART:       {state['uart']} (held by the rig's firmware host)")
        print(f"  log:        {state_dir(args.name) / 'rig.log'}")
        print(f"`hil run --rig {args.name}` uses it; `hil rig down {args.name}` stops it")
        return 0
    if args.action == "down":
        if rig_down(args.name):
            print(f"{args.name} is down")
            return 0
        print(f"{args.name} was not up")
        return 1
    state = running(args.name)
    print(f"{args.name}: " + (f"up, sysfs root {state['root']}" if state else "not up"))
    return 0 if state else 1


def _cmd_rigs(args: argparse.Namespace) -> int:
    from .rigs import find_rig, list_rigs

    if args.action == "check":
        if not args.name:
            print("hil rigs check NAME: which rig?", file=sys.stderr)
            return 2
        from .health import check_rig

        checks = check_rig(find_rig(args.name))
        for c in checks:
            print(f"{'ok  ' if c.ok else 'FAIL'}  {c.name:<22} {c.detail}")
        return 0 if all(c.ok for c in checks) else 1

    rigs = list_rigs()
    if not rigs:
        print("no rigs found (looked in $HIL_RIGS_DIR, ./rigs and the source tree's rigs/)")
        return 1
    bad = 0
    for rig in rigs:
        if isinstance(rig, RigConfigError):
            print(f"BROKEN  {rig}")
            bad += 1
        else:
            print(f"{rig.name:<18} {rig.kind:<11} {rig.description}")
            if rig.kind == "spdm-socket":
                import os

                from .health import parse_peer

                env = os.environ.get("HIL_PEER")
                host, port = rig.socket.get("host", "127.0.0.1"), rig.socket.get("port", 2323)
                where = f"{host}:{port}"
                if env:
                    try:
                        where = "{}:{} (from HIL_PEER)".format(*parse_peer(env))
                    except RigConfigError as exc:
                        where += f" (HIL_PEER ignored: {exc})"
                print(f"{'':<18} peer: {where}")
            print(f"{'':<18} provides: {', '.join(sorted(rig.provides))}   ({rig.path})")
    return 1 if bad else 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import compare_runs, compare_text, find_run, write_report

    root = Path(args.results)
    if args.compare:
        try:
            a, b = (find_run(root, ident) for ident in args.compare)
        except LookupError as exc:
            print(f"hil: {exc}", file=sys.stderr)
            return 4
        print(compare_text(compare_runs(a, b)), end="")
        return 0
    extra_runs, extra_problems = None, None
    out = Path(args.out) if args.out else root
    if args.bundle:
        from .bundle import BundleError, load_bundles, load_public_keys

        if not args.trust:
            print("hil: --bundle needs --trust KEY.pub (the labs' public keys)", file=sys.stderr)
            return 4
        try:
            keys = load_public_keys([Path(k) for k in args.trust])
        except BundleError as exc:
            print(f"hil: {exc}", file=sys.stderr)
            return 4
        extra_runs, extra_problems = load_bundles([Path(b) for b in args.bundle], keys)
    elif not root.is_dir():
        print(f"no results directory at {root}", file=sys.stderr)
        return 1
    summary = write_report(root, out, extra_runs=extra_runs, extra_problems=extra_problems)
    print(
        f"{len(summary['runs'])} runs, {len(summary['rigs'])} rigs, "
        f"{len(summary['devices'])} devices, {len(summary['vectors'])} vectors"
    )
    print(f"wrote {out / 'summary.json'}, {out / 'summary.md'} and {out / 'report.html'}")
    problems = summary["problems"]
    for problem in problems[:20]:
        print(f"warning: {problem}", file=sys.stderr)
    if len(problems) > 20:
        print(f"warning: {len(problems) - 20} more problems in summary.md", file=sys.stderr)
    return 1 if extra_problems else 0


def _cmd_bundle(args: argparse.Namespace) -> int:
    from .bundle import BundleError, keygen, load_public_keys, pack, verify_bundle

    try:
        if args.run_dirs[0] == "verify":
            if not args.trust or len(args.run_dirs) < 2:
                print("hil: hil bundle verify FILE... --trust KEY.pub...", file=sys.stderr)
                return 4
            keys = load_public_keys([Path(k) for k in args.trust])
            bad = 0
            for name in args.run_dirs[1:]:
                try:
                    manifest, _ = verify_bundle(Path(name), keys)
                    print(
                        f"{name}: verifies: lab {manifest['lab']}, key {manifest['key_id']}, "
                        f"{len(manifest['runs'])} runs, {len(manifest['files'])} files"
                    )
                except (BundleError, OSError) as exc:
                    bad += 1
                    print(f"{name}: refused: {exc}")
            return 1 if bad else 0
        if args.run_dirs == ["keygen"]:
            if not args.output:
                print("hil: hil bundle keygen -o FILE (writes FILE and FILE.pub)", file=sys.stderr)
                return 4
            pub = keygen(Path(args.output))
            print(f"wrote {args.output} (private: keep it) and {pub} (give it to organisers)")
            return 0
        if not args.output or not args.key:
            print("hil: hil bundle RUN_DIR... -o FILE --key ED25519_PEM", file=sys.stderr)
            return 4
        manifest = pack(
            [Path(d) for d in args.run_dirs], Path(args.output), Path(args.key), lab=args.lab
        )
    except BundleError as exc:
        print(f"hil: {exc}", file=sys.stderr)
        return 4
    print(
        f"wrote {args.output}: {len(manifest['runs'])} runs, {len(manifest['files'])} files, "
        f"lab {manifest['lab']}, key {manifest['key_id']}"
    )
    return 0


def _cmd_lint(args: argparse.Namespace) -> int:
    from .sim import RTL_TOPS, lint_waivers, rtl_sources, verilator_env

    verilator_env()
    failed = []
    for top in args.tops or RTL_TOPS:
        if top not in RTL_TOPS:
            print(f"unknown RTL top {top!r}; known: {', '.join(RTL_TOPS)}", file=sys.stderr)
            return 2
        cmd = [
            "verilator",
            "--lint-only",
            "-Wall",
            "--top-module",
            top,
            *map(str, lint_waivers(top)),
            *map(str, rtl_sources(top)),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        out = (proc.stdout + proc.stderr).strip()
        ok = proc.returncode == 0 and "%Warning" not in out and "%Error" not in out
        print(f"{'clean' if ok else 'FAIL '}  {top}")
        if not ok:
            print(out)
            failed.append(top)
    return 1 if failed else 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from . import synth

    return synth.run(args)


def _cmd_regen(args: argparse.Namespace) -> int:
    from . import regmap

    root = Path(__file__).resolve().parents[1]
    changed = regmap.generate(root)
    for path in changed:
        print(f"regenerated {path.relative_to(root)}")
    if args.check and changed:
        print("generated files were out of date", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hil", description="PCIe device security vectors on rigs")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the vector suite on a rig")
    run.add_argument("--rig", default="sim-verilator", help="rig name or path to a rig file")
    run.add_argument("-k", default=None, help="only vectors matching this pytest -k expression")
    run.add_argument("-n", default=None, help="parallel workers (pytest-xdist), e.g. 2 or auto")
    run.add_argument("--results", default=None, help="results root (default ./results)")
    run.add_argument("--waves", action="store_true", help="keep FST waveforms of failed vectors")
    run.add_argument(
        "--vectors",
        default=None,
        help="modules (names or .py files, comma-separated) whose vectors replace the suite",
    )
    run.add_argument(
        "--list", action="store_true", help="list what would run, and what is n/a; run nothing"
    )
    run.add_argument(
        "--shard",
        default=None,
        metavar="K/N",
        help="run shard K of N of the selected vectors, balanced by earlier runs' durations "
        "(a CI matrix of N jobs); with --list, show what shard K would run",
    )
    run.add_argument(
        "--shard-group",
        default=None,
        help="names the suite run the shards belong to, for hil report to merge them "
        "(default: the CI run id: $GITHUB_RUN_ID, $CI_PIPELINE_ID, ...)",
    )
    run.add_argument(
        "-v", "--verbose", action="store_true", help="a line as each vector starts and ends"
    )
    run.add_argument("--trust-anchor", default=None, help="root certificate (PEM/DER) to trust")
    run.add_argument(
        "--requester-cert-chain",
        default=None,
        help="the requester's own chain (PEM/DER, root first) for mutual authentication",
    )
    run.add_argument("--requester-key", default=None, help="the requester's private key")
    run.add_argument(
        "--peer",
        default=None,
        help="HOST:PORT of the responder for an spdm-socket rig (default $HIL_PEER, the rig file)",
    )
    run.set_defaults(func=_cmd_run)

    mutate = sub.add_parser(
        "mutate",
        help="apply each seeded device bug alone (firmware and fake hardware on a fake rig, "
        "HDL parameters on a sim rig); report its killers",
    )
    mutate.add_argument("--rig", default="fake", help="a fake or sim rig (name or path)")
    mutate.add_argument("-k", default=None, help="only mutants whose id contains this")
    mutate.add_argument("--report", default=None, help="write the JSON report to this file")
    mutate.set_defaults(func=_cmd_mutate)

    serve = sub.add_parser(
        "serve", help="serve a rig's device on the DMTF spdm-emu socket protocol (PCI_DOE)"
    )
    serve.add_argument("--rig", default="sim-verilator", help="rig name or path (sim or fake)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    talk = serve.add_mutually_exclusive_group()
    talk.add_argument("--quiet", action="store_true", help="warnings only (not each connection)")
    talk.add_argument("--verbose", action="store_true", help="debug detail as well")
    serve.add_argument("--port", type=int, default=2323, help="TCP port (default 2323)")
    serve.add_argument(
        "--cert-chain", default=None, help="device chain: PEM bundle or DER, root first"
    )
    serve.add_argument("--key", default=None, help="device private key (PEM or DER)")
    serve.add_argument(
        "--function-id",
        type=lambda v: int(v, 0),
        default=None,
        help="TDISP FUNCTION_ID the TDI is presented under, e.g. 0xBEEF "
        "(default: function 0's Requester ID)",
    )
    serve.add_argument(
        "--ide-km-port-index",
        type=lambda v: int(v, 0),
        default=0,
        help="IDE_KM PortIndex answered besides 00h (MaxPortIndex); default 0",
    )
    serve.add_argument(
        "--ide-stream-id",
        type=lambda v: int(v, 0),
        default=None,
        help="before each connection, set up Selective IDE stream 0 with this Stream ID and "
        "Enable in config space, as host software would (a socket peer cannot)",
    )
    serve.add_argument(
        "--spdm-versions",
        type=_spdm_versions,
        default=_spdm_versions("1.2,1.3"),
        help="SPDM versions to offer, comma separated (default 1.2,1.3)",
    )
    serve.add_argument(
        "--heartbeat-period",
        type=int,
        default=None,
        help="HeartbeatPeriod in seconds granted to requesters with HBEAT_CAP; a session "
        "silent for twice as long ends (0: none; default 60)",
    )
    serve.add_argument(
        "--mut-auth",
        choices=["none", "requested", "encap", "digests"],
        default="none",
        help="require session-based mutual authentication of requesters that offer it "
        "(MUT_AUTH_CAP): 'requested' the device holds their chain (--requester-cert-chain), "
        "'encap' it fetches it with encapsulated GET_DIGESTS/GET_CERTIFICATE, 'digests' the "
        "same with an implicit GET_DIGESTS; default none",
    )
    serve.add_argument(
        "--requester-trust-anchor",
        default=None,
        help="root certificate (PEM or DER) requester chains must validate to (with --mut-auth)",
    )
    serve.add_argument(
        "--requester-cert-chain",
        default=None,
        help="a requester chain (PEM bundle or DER, root first) provisioned to the device "
        "(--mut-auth requested)",
    )
    serve.set_defaults(func=_cmd_serve)

    rigs = sub.add_parser("rigs", help="list the rigs found; `hil rigs check NAME` probes one")
    rigs.add_argument("action", nargs="?", choices=["list", "check"], default="list")
    rigs.add_argument("name", nargs="?", help="the rig to check")
    rigs.set_defaults(func=_cmd_rigs)

    rig = sub.add_parser("rig", help="`hil rig up NAME` / `hil rig down NAME`: a virtual rig")
    rig.add_argument("action", choices=["up", "down", "status"])
    rig.add_argument("name", help="the virtual rig (e.g. virtual-fpga)")
    rig.set_defaults(func=_cmd_rig)

    report = sub.add_parser(
        "report", help="aggregate every run into summary.json, summary.md and report.html"
    )
    report.add_argument("--results", default="results", help="results root (default ./results)")
    report.add_argument("--out", default=None, help="write the report here (default: --results)")
    report.add_argument(
        "--compare",
        nargs=2,
        metavar=("RUN_A", "RUN_B"),
        help="what changed between two runs (run folders, or run ids under --results)",
    )
    report.add_argument(
        "--bundle", nargs="+", default=None, help="plugfest bundles (hil bundle) to take in"
    )
    report.add_argument(
        "--trust", nargs="+", default=None, help="public keys (PEM) of the labs to trust"
    )
    report.set_defaults(func=_cmd_report)

    bundle = sub.add_parser(
        "bundle",
        help="pack runs into a signed archive (hil bundle RUN_DIR... -o FILE --key KEY); "
        "`hil bundle keygen -o FILE` makes a lab key; `hil bundle verify FILE... --trust KEY.pub` "
        "checks bundles",
    )
    bundle.add_argument("run_dirs", nargs="+", help="run folders (results/<rig>/<run-id>)")
    bundle.add_argument("-o", "--output", default=None, help="the archive (.tar.gz or .zip)")
    bundle.add_argument("--key", default=None, help="the lab's Ed25519 private key (PEM)")
    bundle.add_argument("--lab", default=None, help="the lab's name (default: this host's)")
    bundle.add_argument(
        "--trust", nargs="+", default=None, help="`hil bundle verify FILE... --trust KEY.pub...`"
    )
    bundle.set_defaults(func=_cmd_bundle)

    lint = sub.add_parser("lint", help="verilator --lint-only -Wall over every RTL top")
    lint.add_argument("tops", nargs="*", help="only these tops")
    lint.set_defaults(func=_cmd_lint)

    from .synth import add_arguments as synth_arguments

    synth = sub.add_parser(
        "synth", help="Yosys synth_xilinx of an RTL top: LUT/FF/BRAM/DSP, no latches"
    )
    synth_arguments(synth)
    synth.set_defaults(func=_cmd_synth)

    regen = sub.add_parser("regen", help="regenerate register constants, package and docs")
    regen.add_argument("--check", action="store_true", help="exit 1 if anything changed")
    regen.set_defaults(func=_cmd_regen)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except RigConfigError as exc:
        print(f"hil: {exc}", file=sys.stderr)
        return 2
    except RigError as exc:
        print(f"hil: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
