"""Plugfest bundles: runs packed into one archive, signed by the lab's Ed25519 key.

An archive (``.tar.gz``, or ``.zip``) holds ``manifest.json``, ``manifest.sig`` (the Ed25519
signature of manifest.json's exact bytes, base64) and the runs' files under
``runs/<rig>/<run-id>/``.  The manifest names the lab, the signing key's id (SHA-256 of the raw
public key, 16 hex digits), every run, and every file with its SHA-256 and size.

Taking a bundle in (:func:`load_bundles`), in this order, and refused with one clear line at the
first thing that does not hold: the archive reads whole (truncated or not an archive); every
member is a regular file at a plain relative path (no absolute paths, ``..``, links or devices:
nothing is ever written outside a temporary folder); the manifest is signed by a key the
reader trusts (an unknown key, or a signature that does not verify over the manifest); every
file matches its digest and size (tampered); the archive holds exactly the files the manifest
lists; each run's run.json says the rig and run id the manifest claims (a lying manifest).
Key material never enters a bundle: only run folders are packed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import socket
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ._version import __version__
from .results import utc_now

__all__ = [
    "FORMAT",
    "BundleError",
    "key_id",
    "keygen",
    "load_bundles",
    "load_public_keys",
    "pack",
    "verify_bundle",
]

FORMAT = "hil-bundle/1"
#: Limits on what a bundle may hold (a hostile archive cannot exhaust memory).
MAX_MEMBER_BYTES = 256 << 20
MAX_TOTAL_BYTES = 1 << 30
MAX_MEMBERS = 200_000
_SAFE_PART = re.compile(r"^[A-Za-z0-9._+@=-]+$")


class BundleError(Exception):
    """A bundle that cannot be made, read or trusted; the message says which and why."""


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def keygen(path: Path) -> Path:
    """A new lab key: ``path`` (private, PKCS#8 PEM, mode 0600) and ``path.pub``."""
    pub_path = path.with_name(path.name + ".pub")
    for p in (path, pub_path):
        if p.exists():
            raise BundleError(f"{p} exists: not overwriting a key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    pub_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pub_path


def _private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise BundleError(
            f"--key {path}: not a readable unencrypted PEM private key ({exc})"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError(f"--key {path}: a {type(key).__name__}, not an Ed25519 key")
    return key


def load_public_keys(paths: list[Path]) -> dict[str, Ed25519PublicKey]:
    """Trusted lab keys (PEM public keys) by key id."""
    keys = {}
    for path in paths:
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise BundleError(f"--trust {path}: not a readable PEM public key ({exc})") from None
        if not isinstance(key, Ed25519PublicKey):
            raise BundleError(f"--trust {path}: a {type(key).__name__}, not an Ed25519 key")
        keys[key_id(key)] = key
    return keys


def _run_files(run_dir: Path) -> list[Path]:
    files = []
    for path in sorted(run_dir.rglob("*")):
        if path.is_symlink():
            raise BundleError(f"{path}: a symbolic link; bundles hold regular files only")
        if path.is_file() and not path.name.endswith(".tmp"):
            files.append(path)
    return files


def pack(run_dirs: list[Path], output: Path, key_path: Path, *, lab: str | None = None) -> dict:
    """Pack ``run_dirs`` into ``output`` (``.zip`` or ``.tar.gz``), signed; the manifest."""
    key = _private_key(key_path)
    lab = lab or socket.gethostname()
    files: dict[str, dict[str, Any]] = {}
    payload: dict[str, bytes] = {}
    runs = []
    for run_dir in run_dirs:
        if not (run_dir / "run.json").is_file():
            raise BundleError(f"{run_dir}: not a run folder (no run.json)")
        try:
            meta = json.loads((run_dir / "run.json").read_text())
        except ValueError as exc:
            raise BundleError(f"{run_dir}/run.json: not JSON ({exc})") from None
        rig = str(meta.get("rig") or run_dir.parent.name)
        run_id = str(meta.get("run_id") or run_dir.name)
        for part in (rig, run_id):
            if not _SAFE_PART.match(part):
                raise BundleError(f"{run_dir}: rig or run id {part!r} is not a plain name")
        base = f"runs/{rig}/{run_id}"
        if any(r["path"] == base for r in runs):
            raise BundleError(f"{run_dir}: run {rig}/{run_id} given twice")
        runs.append({"rig": rig, "run_id": run_id, "path": base})
        for path in _run_files(run_dir):
            name = f"{base}/{path.relative_to(run_dir).as_posix()}"
            data = path.read_bytes()
            payload[name] = data
            files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    manifest = {
        "format": FORMAT,
        "lab": lab,
        "created": utc_now(),
        "hil_version": __version__,
        "key_id": key_id(key.public_key()),
        "runs": runs,
        "files": files,
    }
    text = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    sig = base64.b64encode(key.sign(text)) + b"\n"
    members = [("manifest.json", text), ("manifest.sig", sig), *payload.items()]
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    os.close(fd)
    try:
        if output.suffix == ".zip":
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
                for name, data in members:
                    z.writestr(name, data)
        else:
            with tarfile.open(tmp, "w:gz") as t:
                for name, data in members:
                    info = tarfile.TarInfo(name)
                    info.size, info.mode, info.mtime = len(data), 0o644, 0
                    t.addfile(info, io.BytesIO(data))
        os.chmod(tmp, 0o644)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return manifest


def _safe_name(name: str) -> str:
    path = PurePosixPath(name)
    if (
        not name
        or "\\" in name
        or path.is_absolute()
        or any(part in ("", "..", ".") for part in name.split("/"))
    ):
        raise BundleError(f"member {name!r} has an unsafe path (absolute or with ..)")
    return name


def _read_members(path: Path) -> dict[str, bytes]:
    """Every member's bytes, read in memory; never extracted."""
    members: dict[str, bytes] = {}
    total = 0

    def add(name: str, size: int, read: Any) -> None:
        nonlocal total
        _safe_name(name)
        if name in members:
            raise BundleError(f"member {name} appears twice")
        if size > MAX_MEMBER_BYTES or total + size > MAX_TOTAL_BYTES or len(members) > MAX_MEMBERS:
            raise BundleError(f"member {name}: bundle larger than the limits")
        data = read()
        if len(data) != size:
            raise BundleError(f"member {name} is cut short: the archive is truncated")
        total += size
        members[name] = data

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                for info in z.infolist():
                    if info.is_dir():
                        continue
                    mode = (info.external_attr >> 16) & 0o170000
                    if mode not in (0, 0o100000):
                        raise BundleError(f"member {info.filename} is not a regular file")
                    add(info.filename, info.file_size, lambda i=info: z.read(i))
        else:
            with tarfile.open(path, "r:*") as t:
                for info in t:
                    if info.isdir():
                        continue
                    if not info.isfile():
                        raise BundleError(f"member {info.name} is a link or device, not a file")
                    f = t.extractfile(info)
                    assert f is not None
                    add(info.name, info.size, f.read)
    except BundleError:
        raise
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise BundleError(f"not a whole archive (truncated or corrupt: {exc})") from None
    except Exception as exc:  # zlib.error and friends from a cut gzip stream
        raise BundleError(f"not a whole archive ({type(exc).__name__}: {exc})") from None
    return members


def verify_bundle(path: Path, keys: dict[str, Ed25519PublicKey]) -> tuple[dict, dict[str, bytes]]:
    """The manifest and the files of a bundle that verifies; BundleError saying why not."""
    members = _read_members(path)
    if "manifest.json" not in members or "manifest.sig" not in members:
        raise BundleError("no manifest.json and manifest.sig: not a hil bundle")
    text = members.pop("manifest.json")
    try:
        sig = base64.b64decode(members.pop("manifest.sig").strip(), validate=True)
    except ValueError:
        raise BundleError("manifest.sig is not base64") from None
    try:
        manifest = json.loads(text)
        claimed = str(manifest["key_id"])
        lab = str(manifest["lab"])
        files = dict(manifest["files"])
        runs = list(manifest["runs"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"manifest.json is not a hil bundle manifest ({exc})") from None
    if manifest.get("format") != FORMAT:
        raise BundleError(f"manifest format {manifest.get('format')!r}, not {FORMAT}")
    signer = None
    for kid in [claimed] + [k for k in keys if k != claimed]:
        if kid in keys:
            try:
                keys[kid].verify(sig, text)
                signer = kid
                break
            except InvalidSignature:
                continue
    if signer is None:
        if claimed in keys:
            raise BundleError(
                f"signature does not verify with lab {lab}'s key {claimed}: the manifest "
                "was changed after signing (tampered)"
            )
        raise BundleError(
            f"signed by key {claimed} (lab {lab}), which is not among the trusted keys"
        )
    for name, entry in files.items():
        if name not in members:
            raise BundleError(
                f"{name} is in the manifest but not in the archive (truncated, or the "
                "manifest lies)"
            )
        data = members[name]
        if len(data) != entry.get("size") or hashlib.sha256(data).hexdigest() != entry.get(
            "sha256"
        ):
            raise BundleError(f"{name} does not match its SHA-256 in the manifest (tampered)")
    extra = sorted(set(members) - set(files))
    if extra:
        raise BundleError(f"{extra[0]} is in the archive but not in the signed manifest")
    bases = set()
    for run in runs:
        rig, run_id, base = str(run.get("rig")), str(run.get("run_id")), str(run.get("path"))
        if base != f"runs/{rig}/{run_id}" or not all(_SAFE_PART.match(p) for p in (rig, run_id)):
            raise BundleError(f"manifest run entry {run!r} is malformed")
        meta_bytes = members.get(f"{base}/run.json")
        if meta_bytes is None:
            raise BundleError(f"manifest lists run {rig}/{run_id} but it has no run.json")
        try:
            meta = json.loads(meta_bytes)
        except ValueError:
            raise BundleError(f"{base}/run.json is not JSON") from None
        if not isinstance(meta, dict) or (meta.get("rig"), meta.get("run_id")) != (rig, run_id):
            got = (meta.get("rig"), meta.get("run_id")) if isinstance(meta, dict) else None
            raise BundleError(
                f"the manifest says run {run_id} on rig {rig} but its run.json says {got} "
                "(the manifest lies)"
            )
        bases.add(base + "/")
    stray = [n for n in files if not any(n.startswith(b) for b in bases)]
    if stray:
        raise BundleError(f"{stray[0]} is outside every run the manifest lists")
    return manifest, members


def load_bundles(
    paths: list[Path], keys: dict[str, Ed25519PublicKey]
) -> tuple[list[Any], list[str]]:
    """The runs of every bundle that verifies (as report runs, with the lab and bundle as
    their provenance) and one problem line per bundle refused."""
    from .report import load_run

    runs: list[Any] = []
    problems: list[str] = []
    for path in paths:
        try:
            manifest, members = verify_bundle(path, keys)
        except BundleError as exc:
            problems.append(f"bundle {path}: refused: {exc}")
            continue
        except OSError as exc:
            problems.append(f"bundle {path}: unreadable ({exc.strerror or exc})")
            continue
        with tempfile.TemporaryDirectory(prefix="hil-bundle-") as tmp:
            top = Path(tmp).resolve()
            for name, data in members.items():
                dest = (top / _safe_name(name)).resolve()
                if not dest.is_relative_to(top):  # _safe_name already refused it; belt and braces
                    raise BundleError(f"member {name} escapes the folder")
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(data)
            for entry in manifest["runs"]:
                where = f"{manifest['lab']}:{entry['rig']}/{entry['run_id']}"
                run = load_run(top / entry["path"], None, where)
                run.lab = str(manifest["lab"])
                run.source = f"bundle {path.name} ({manifest['lab']}, key {manifest['key_id']})"
                runs.append(run)
    return runs, problems
