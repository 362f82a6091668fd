"""The pytest plugin: ``pytest --rig NAME`` runs the vector suite on a rig.

Each vector becomes one pytest item (so ``-k`` selects and pytest-xdist's ``-n`` spreads them).
The vector runs in the item's setup: a rig or vector that breaks is a pytest *error*; a device
that breaks the spec is a *failure*; ``skip`` and ``n/a`` are skips with their reason.  The
controlling process records every report in ``results/<rig>/<run-id>/`` as it arrives.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from .backends import Backend, backend_for
from .errors import RigConfigError, RigError
from .health import parse_peer, preflight
from .results import RunWriter, atomic_write_text, utc_now
from .rigs import Rig, find_rig
from .shard import GROUP_ENV, ShardSpec, ci_group, partition, plan_digest, recorded_durations
from .vectors import Outcome, Vector, VectorResult, load_suite, missing_needs

_RIG = pytest.StashKey[Rig]()
_WRITER = pytest.StashKey[RunWriter]()
_BACKEND = pytest.StashKey[Backend]()
_SUITE = pytest.StashKey[dict[str, Vector]]()
_SHARD = pytest.StashKey["_Shard"]()
_RESULT_KEY = "hil_result"
#: How long the end of a run waits for a simulated rig's identity probe.
_IDENTITY_WAIT_S = 60.0


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "hil vector suite")
    group.addoption("--rig", default=None, help="run the hil vectors on this rig (name or path)")
    group.addoption(
        "--results",
        default=None,
        help="results root (default: $HIL_RESULTS or ./results)",
    )
    group.addoption(
        "--waves", action="store_true", help="keep the waveform (FST) of each failed vector"
    )
    group.addoption(
        "--trust-anchor",
        default=None,
        help="root certificate (PEM or DER) the run trusts; overrides the rig's trust_anchor",
    )
    group.addoption(
        "--requester-cert-chain",
        default=None,
        help="the requester's own certificate chain (PEM or DER, root first) for mutual "
        "authentication; overrides the rig's requester_cert_chain",
    )
    group.addoption(
        "--requester-key",
        default=None,
        help="the requester's private key (PEM or DER); overrides the rig's requester_key",
    )
    group.addoption(
        "--peer",
        default=None,
        help="HOST:PORT of the SPDM responder (spdm-socket rigs; default $HIL_PEER, then the "
        "rig file's [socket])",
    )
    group.addoption(
        "--vectors",
        default=None,
        help="comma-separated modules whose vectors replace the project's suite",
    )
    group.addoption(
        "--shard",
        default=None,
        metavar="K/N",
        help="run shard K of N of the selected vectors (balanced by earlier runs' durations)",
    )
    group.addoption(
        "--shard-group",
        default=None,
        help="names the suite run the shards belong to (default: the CI run id, e.g. "
        "$GITHUB_RUN_ID or $CI_PIPELINE_ID); hil report merges a group's shards",
    )


#: Settings that name files, which the command line may override.
_PATH_SETTINGS = ("trust_anchor", "requester_cert_chain", "requester_key")


def _with_command_line(rig: Rig, config: pytest.Config) -> Rig:
    """The rig as this run sees it: file settings resolved, command-line overrides applied."""
    settings = dict(rig.settings)  # file names in it are resolved already (hil.rigs)
    for key in _PATH_SETTINGS:
        given = config.getoption("--" + key.replace("_", "-"))
        if given:
            if not Path(given).is_file():
                raise RigConfigError(f"--{key.replace('_', '-')}: no file at {given}")
            settings[key] = str(Path(given).resolve())
    socket = dict(rig.socket)
    peer = config.getoption("--peer") or os.environ.get("HIL_PEER")
    if peer:
        if rig.kind != "spdm-socket":
            raise RigConfigError(
                f"--peer: rig {rig.name} is of kind {rig.kind!r}; only spdm-socket rigs have a peer"
            )
        socket["host"], socket["port"] = parse_peer(peer)
    return dataclasses.replace(rig, settings=settings, socket=socket)


def _vector_modules(config: pytest.Config) -> list[str]:
    """``--vectors`` entries as every process can load them: module names importable as they
    are, anything else (a file path, a module in the current directory) as an absolute path."""
    value = config.getoption("--vectors") or ""
    out = []
    for entry in (m.strip() for m in value.split(",")):
        if not entry:
            continue
        local = Path(entry.replace(".", os.sep) + ".py")
        if entry.endswith(".py") or os.sep in entry:
            entry = str(Path(entry).expanduser().resolve())
        elif local.is_file() and not _importable(entry):
            entry = str(local.resolve())
        out.append(entry)
    return out


def _importable(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _results_root(config: pytest.Config) -> Path:
    value = config.getoption("--results") or os.environ.get("HIL_RESULTS") or "results"
    return Path(value).resolve()


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # Before any worker, simulator or hil process is started (hil.sim.bytecode_cache_env).
    from .sim import bytecode_cache_env

    bytecode_cache_env()
    name = config.getoption("--rig")
    if not name:
        return
    try:
        rig = find_rig(name)
    except RigConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    try:
        rig = _with_command_line(rig, config)
    except RigConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    try:
        suite = load_suite(_vector_modules(config))
    except (ImportError, ValueError) as exc:
        raise pytest.UsageError(f"--vectors: {exc}") from None
    if not _is_worker(config) and not config.option.collectonly:
        try:
            preflight(rig)
        except RigError as exc:
            raise pytest.UsageError(f"rig {rig.name}: {exc}") from None
    config.stash[_RIG] = rig
    config.stash[_SUITE] = suite
    if config.getoption("--shard"):
        shard = _plan_shard(config, rig, suite)
        config.stash[_SHARD] = shard
        config.pluginmanager.register(shard, "hil-shard")
    config.stash[_BACKEND] = backend_for(rig, _vector_modules(config))
    config.addinivalue_line("markers", "hil_vector: a hil vector run on a rig")
    if _is_worker(config):
        return
    root = _results_root(config)
    try:
        root.mkdir(parents=True, exist_ok=True)
        if not os.access(root, os.W_OK | os.X_OK):
            raise PermissionError(13, "not writable")
    except OSError as exc:
        raise pytest.UsageError(
            f"--results {root}: cannot write results there ({exc.strerror or exc})"
        ) from None
    writer = RunWriter(root, rig.name, rig.kind, _run_info(config, rig))
    config.stash[_WRITER] = writer
    config.pluginmanager.register(
        _Recorder(writer, suite, config.stash[_BACKEND], config), "hil-recorder"
    )
    if not config.option.xmlpath:
        config.option.xmlpath = str(writer.run_dir / ".junit.xml.partial")


class _Shard:
    """This process's shard: which vectors it keeps of those collected."""

    def __init__(
        self,
        spec: ShardSpec,
        group: str,
        shards: list[list[str]],
        durations: dict[str, float],
        runs: int,
    ) -> None:
        self.spec, self.group, self.durations, self.runs = spec, group, durations, runs
        self.mine = frozenset(shards[spec.k - 1])
        self.domain = sum(len(s) for s in shards)
        self.digest = plan_digest(shards)

    def info(self) -> dict[str, Any]:
        return {
            "k": self.spec.k,
            "n": self.spec.n,
            "group": self.group,
            "plan": self.digest,
            "vectors": len(self.mine),
            "of": self.domain,
            "durations_from_runs": self.runs,
        }

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        """After every other selection (``-k``, markers): keep this shard's vectors."""
        keep = [i for i in items if not isinstance(i, VectorItem) or i.vector.id in self.mine]
        dropped = [i for i in items if isinstance(i, VectorItem) and i.vector.id not in self.mine]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = keep


def _plan_shard(config: pytest.Config, rig: Rig, suite: dict[str, Vector]) -> _Shard:
    """The partition of the selected vectors, the same in every process and on every machine
    that sees the same earlier results.  pytest-xdist workers take the controller's durations,
    so a run that records while they collect cannot change their plan."""
    try:
        spec = ShardSpec.parse(config.getoption("--shard"))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    group = config.getoption("--shard-group") or ci_group()
    if not group:
        raise pytest.UsageError(
            f"--shard {spec}: name the suite run the shards belong to with --shard-group NAME "
            f"(or run in CI: {', '.join(v for v, _ in GROUP_ENV)})"
        )
    if _is_worker(config) and "hil_shard_durations" in config.workerinput:
        durations = json.loads(config.workerinput["hil_shard_durations"])
        runs = int(config.workerinput.get("hil_shard_runs", 0))
    else:
        durations, runs = recorded_durations(_results_root(config), rig.name, exclude_group=group)
    ids = list(suite)
    chosen = select_ids(ids, config.getoption("keyword") or "")
    # A -k expression is left to pytest, which applies it within each shard: the shards split
    # the whole suite then, so no vector pytest would select falls outside every shard.
    domain = [i for i in ids if chosen is None or i in chosen]
    return _Shard(spec, group, partition(domain, spec.n, durations), durations, runs)


def _run_info(config: pytest.Config, rig: Rig) -> dict[str, Any]:
    """run.json's description of the rig and of what was asked to run (never key material:
    settings name key files by path only, and a rig file holding a key is not copied)."""
    info = dict(config.stash[_BACKEND].info())
    info["selection"] = {
        "k": config.getoption("keyword") or None,
        "vectors": config.getoption("--vectors") or None,
    }
    argv = [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv else []
    info["command"] = argv
    info["pytest_args"] = [str(a) for a in config.invocation_params.args]
    rig_file: dict[str, Any] = {"path": str(rig.path) if rig.path else None}
    if rig.path is not None:
        try:
            text = Path(rig.path).read_text(errors="replace")
            if "PRIVATE KEY" in text:
                rig_file["note"] = "not copied: the file holds a private key"
            else:
                rig_file["text"] = text[:20000]
        except OSError as exc:
            rig_file["note"] = f"unreadable: {exc.strerror or exc}"
    info["rig_file"] = rig_file
    shard = config.stash.get(_SHARD, None)
    if shard is not None:
        info["shard"] = shard.info()
    return info


def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: tell each worker where this run's artifacts go."""
    writer = node.config.stash.get(_WRITER, None)
    if writer is not None:
        node.workerinput["hil_artifacts"] = str(writer.artifacts_dir)
    shard = node.config.stash.get(_SHARD, None)
    if shard is not None:
        node.workerinput["hil_shard_durations"] = json.dumps(shard.durations)
        node.workerinput["hil_shard_runs"] = shard.runs


def _artifacts_dir(config: pytest.Config) -> Path:
    if _is_worker(config):
        return Path(config.workerinput["hil_artifacts"])
    return config.stash[_WRITER].artifacts_dir


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if _RIG in config.stash and not _is_worker(config):
        backend = config.stash[_BACKEND]
        try:
            backend.prepare()  # e.g. build the HDL once, before workers start
        except RigError as exc:
            pytest.exit(f"rig {config.stash[_RIG].name} is not usable: {exc}", returncode=3)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With ``--rig``, the session holds the vector suite and nothing else."""
    if _RIG in config.stash:
        return True
    return None


class VectorSuite(pytest.Collector):
    def collect(self) -> list[pytest.Item]:  # items are made in pytest_collection_modifyitems
        return []


class VectorItem(pytest.Item):
    def __init__(self, *, vector: Vector, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.vector = vector
        self.result: VectorResult | None = None
        self.add_marker("hil_vector")
        for part in vector.id.split("."):
            self.keywords[part] = True

    def setup(self) -> None:
        config = self.config
        started = utc_now()
        missing = missing_needs(self.vector, config.stash[_RIG].provides)
        try:
            if missing:  # no need to start a simulator or touch a device to know this
                result = VectorResult(
                    Outcome.NA, f"rig {config.stash[_RIG].name} lacks {', '.join(sorted(missing))}"
                )
            else:
                result = config.stash[_BACKEND].run_vector(
                    self.vector,
                    artifacts_dir=_artifacts_dir(config),
                    waves=bool(config.getoption("--waves")),
                )
        except Exception as exc:
            result = VectorResult(Outcome.ERROR, f"the rig failed to run the vector: {exc!r}")
        self.result = result
        self.user_properties.append(
            (_RESULT_KEY, json.dumps({**result.to_json(), "started": started}))
        )
        if result.outcome is Outcome.ERROR:
            raise VectorError(result.message)
        if result.outcome is Outcome.SKIP:
            pytest.skip(result.message or "skipped")
        if result.outcome is Outcome.NA:
            pytest.skip(f"n/a: {result.message}")

    def runtest(self) -> None:
        assert self.result is not None
        if self.result.outcome is Outcome.FAIL:
            raise VectorFailure(self.result.message)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style=None) -> str:  # type: ignore[override]
        if isinstance(excinfo.value, VectorFailure | VectorError):
            return f"{self.vector.id}: {excinfo.value}"
        return super().repr_failure(excinfo)

    def _repr_failure_py(self, excinfo: pytest.ExceptionInfo[BaseException], style=None):  # type: ignore[override]
        # An error raised in setup is shown through this, not repr_failure: the vector's own
        # message and frames, never the plugin's source.
        if isinstance(excinfo.value, VectorFailure | VectorError):
            return f"{self.vector.id}: {excinfo.value}"
        return super()._repr_failure_py(excinfo, style=style)

    def reportinfo(self) -> tuple[str, int | None, str]:
        return self.vector.spec, None, f"{self.vector.id}: {self.vector.title}"


class VectorFailure(Exception):
    """The device broke the spec."""


class VectorError(Exception):
    """The rig or the vector broke."""


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    rig = config.stash.get(_RIG, None)
    if rig is None:
        return
    suite = VectorSuite.from_parent(session, name=f"rig-{rig.name}")
    vectors = config.stash[_SUITE]
    chosen = select_ids(list(vectors), config.getoption("keyword") or "")
    if chosen is not None:  # a dotted prefix or a glob: pytest's -k has nothing left to do
        config.option.keyword = ""
    items[:] = [
        VectorItem.from_parent(suite, name=vid, vector=vec)
        for vid, vec in vectors.items()
        if chosen is None or vid in chosen
    ]


def _record_for(report: pytest.TestReport, vectors: dict[str, Vector]) -> dict[str, Any] | None:
    props = dict(report.user_properties)
    vid = report.nodeid.rsplit("::", 1)[-1]
    vec = vectors.get(vid)
    if _RESULT_KEY in props:
        data = json.loads(props[_RESULT_KEY])
    elif report.failed:  # e.g. a pytest-xdist worker died under the vector
        data = {
            "outcome": "error",
            "message": f"no result from the worker: {report.longreprtext[-2000:]}",
            "duration_s": report.duration,
            "measurements": [],
            "artifacts": [],
            "started": utc_now(),
        }
    else:
        return None
    return {
        "vector": vid,
        "title": vec.title if vec else "",
        "spec": vec.spec if vec else "",
        "needs": sorted(vec.needs) if vec else [],
        "outcome": data["outcome"],
        "duration_s": round(float(data.get("duration_s", 0.0)), 6),
        "started": data.get("started"),
        "message": data.get("message", ""),
        "measurements": data.get("measurements", []),
        "artifacts": data.get("artifacts", []),
    }


def select_ids(ids: list[str], expression: str) -> set[str] | None:
    """The ids ``-k`` picks when it is a dotted prefix (``ide`` is ``ide.*``, not
    ``telemetry.ide.*``) or a glob (``spdm.*.signature``); None: use pytest's expression."""
    expr = expression.strip()
    if not expr or any(c in expr for c in " ()") or expr.startswith("not"):
        return None
    if any(c in expr for c in "*?["):
        found = {i for i in ids if fnmatch.fnmatchcase(i, expr)}
    else:
        found = {i for i in ids if i == expr or i.startswith(expr + ".")}
    return found or None


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    """No progress letters for vectors: ``hil run`` shows its own lines."""
    if _RIG not in config.stash or report.when == "teardown":
        return None
    if report.when == "setup" and report.passed:
        return "", "", ""
    category = "passed" if report.passed else ("skipped" if report.skipped else report.outcome)
    if report.when == "setup" and report.failed:
        category = "error"
    return category, "", ""


class _Recorder:
    """Registered in the controlling process of a ``--rig`` session: records as reports come."""

    def __init__(
        self,
        writer: RunWriter,
        vectors: dict[str, Vector],
        backend: Backend,
        config: pytest.Config | None = None,
    ) -> None:
        self.writer = writer
        self.vectors = vectors
        self.backend = backend
        self.config = config
        self.total = 0
        self.started = time.monotonic()
        self.running: dict[str, float] = {}
        self.live = sys.stdout.isatty() and not os.environ.get("CI")
        self.verbose = bool(config and config.get_verbosity() > 0)
        self.identity_thread: threading.Thread | None = None
        self.identity_started = False
        self.exitstatus: int | None = None

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.total = len(session.items)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        """Before the first vector: what device and host this run tests, into run.json.  One
        probe through the rig's backend; it never fails the run.  A simulated rig probes in a
        simulator of its own, alongside the vectors; any other rig before them (one device,
        one connection at a time)."""
        if session.items and not session.config.option.collectonly:
            self._start_identity()

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """pytest-xdist: the controller collects nothing itself; the first worker to collect a
        vector starts the probe (before the controller hands out any vector)."""
        if ids:
            self._start_identity()

    def _start_identity(self) -> None:
        if self.identity_started:
            return
        self.identity_started = True
        if self.backend.rig.kind == "sim":
            self.identity_thread = threading.Thread(
                target=self._identify, name="hil-identity", daemon=True
            )
            self.identity_thread.start()
        else:
            self._identify()

    def _identify(self) -> None:
        from .identity import host_side, identify

        device = identify(self.backend)
        # After the probe: a virtual rig is up by now, and its TSM files are there to read.
        self.writer.info["tested_by"] = host_side(self.backend)
        self.writer.info["device"] = device
        self.writer.info["device_key"] = device.get("key")
        self.writer.write_run(finished=None)
        virtual = getattr(self.backend, "virtual", None)
        distributed = self.config is not None and getattr(self.config.option, "dist", "no") != "no"
        if virtual is not None and distributed:
            # pytest-xdist workers run the vectors, each on its own virtual rig: the one the
            # probe brought up here would only idle until the end of the run.
            virtual.stop()
            self.backend.virtual = None  # type: ignore[attr-defined]

    def _identity_done(self) -> None:
        thread = self.identity_thread
        if thread is None:
            return
        thread.join(timeout=_IDENTITY_WAIT_S)
        if thread.is_alive():
            self.writer.info["device"] = {
                "key": None,
                "notes": [f"identity probe still running after the run (+{_IDENTITY_WAIT_S} s)"],
            }
            self.writer.info["device_key"] = None

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.exitstatus = exitstatus
        if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and self._empty_shard():
            session.exitstatus = pytest.ExitCode.OK  # a CI job with nothing to run succeeded

    def _empty_shard(self) -> bool:
        """A shard that finished with nothing to run (not one stopped before its first)."""
        config = self.config
        return (
            config is not None
            and _SHARD in config.stash
            and not self.writer.records
            and not config.option.collectonly
            and self.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
        )

    def _elapsed(self) -> str:
        seconds = int(time.monotonic() - self.started)
        return f"{seconds // 60}:{seconds % 60:02d}"

    def _status(self) -> None:
        """The live line: progress count, elapsed time, what is running."""
        if not self.live:
            return
        done = len(self.writer.records)
        running = ", ".join(sorted(self.running)) or "-"
        line = f"[{done}/{self.total} {self._elapsed()}] {running}"
        width = shutil.get_terminal_size((100, 20)).columns - 1
        sys.stdout.write("\r" + _cut(line, width).ljust(width) + "\r")
        sys.stdout.flush()

    def _clear(self) -> None:
        if self.live:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            sys.stdout.write("\r" + " " * width + "\r")

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        vid = nodeid.rsplit("::", 1)[-1]
        self.running[vid] = time.monotonic()
        if self.verbose:
            self._clear()
            print(f"[{len(self.writer.records) + 1}/{self.total} {self._elapsed()}] start {vid}")
        self._status()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # One record per vector: from the setup report unless setup passed, else from the call.
        if report.when == "teardown" or (report.when == "setup" and report.passed):
            return
        record = _record_for(report, self.vectors)
        if record is not None:
            self.writer.add(record)
            self.running.pop(record["vector"], None)
            if self.verbose or self.live:
                self._clear()
                print(
                    f"[{len(self.writer.records)}/{self.total} {self._elapsed()}] "
                    f"{record['outcome']:<5} {record['vector']}  {record['duration_s']:.2f}s"
                    + (f"  {_cut(_first_line(record['message']), 70)}" if record["message"] else "")
                )
            self._status()

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        writer, tr = self.writer, terminalreporter
        self._clear()
        shard = self.config.stash.get(_SHARD, None) if self.config else None
        if shard is not None:
            tr.write_line(
                f"shard {shard.spec} of group {shard.group}: {len(shard.mine)} of "
                f"{shard.domain} vectors (durations from {shard.runs} earlier runs)"
            )
        if not writer.records:
            if self._empty_shard():
                tr.write_line(f"results: {writer.run_dir} (an empty shard, recorded as such)")
                return
            tr.write_line(f"no vector selected on {writer.rig}: nothing run, no results written")
            return
        tr.section(f"hil vectors on {writer.rig}")
        width = max([len(r["vector"]) for r in writer.records] + [6])
        tr.write_line(f"{'vector':<{width}}  {'outcome':<7}  {'time':>8}  message")
        for rec in sorted(writer.records, key=lambda r: r["vector"]):
            msg = _cut(_first_line(rec["message"]), 80)
            tr.write_line(
                f"{rec['vector']:<{width}}  {rec['outcome']:<7}  {rec['duration_s']:>7.2f}s  {msg}"
            )
        totals = ", ".join(f"{n} {k}" for k, n in writer.totals().items() if n)
        tr.write_line(f"totals: {totals} in {time.monotonic() - self.started:.1f} s")
        tr.write_line(f"results: {writer.run_dir}")

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self._identity_done()
        self.backend.finish()
        if self._empty_shard():
            # More shards than vectors, or -k left this shard none: it ran nothing, and says
            # so, so that `hil report` does not count it missing.
            atomic_write_text(self.writer.run_dir / "records.jsonl", "")
        elif not self.writer.records:
            # -k that selects nothing, --collect-only, a run stopped before any vector: no
            # results folder for `hil report` to count.
            shutil.rmtree(self.writer.run_dir, ignore_errors=True)
            return
        partial = self.writer.run_dir / ".junit.xml.partial"
        if partial.exists():
            os.replace(partial, self.writer.run_dir / "junit.xml")
        self.writer.finish()


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else ""


def _cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters; a cut one ends with an ellipsis."""
    return text if len(text) <= width else text[: max(0, width - 1)] + "\u2026"
