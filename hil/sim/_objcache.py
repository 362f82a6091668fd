"""An object cache for Verilator's runtime library, shared by every build.

Each Verilator build compiles the same runtime sources (``verilated.cpp``, ``verilated_vpi.cpp``,
``verilated_fst_c.cpp``, ...) again in its own directory: about 11 s of CPU per build on this
project's machines, for objects that come out byte-for-byte the same whenever the compiler, the
flags and the headers are the same.  Verilator's makefile runs every compile as
``$(OBJCACHE) $(CXX) ...``; this module is that ``OBJCACHE`` (ccache's role, which a pip
install cannot provide).

It caches only what cannot depend on the design: a compile whose source and every header it
read (from the compiler's own ``-MMD`` dependency list) lie outside the build directory.  An
entry is keyed by the compiler (path, size, mtime) and its whole command line less the output
name, and is used only while every dependency still has the content hash recorded with it.
Anything else (the model's C++, a failed compile, a command it does not understand) runs the
compiler unchanged.

Usage (what ``hil.sim._build`` passes to make)::

    OBJCACHE="python -m hil.sim._objcache --dir DIR"
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["main"]


def _hash_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _parse(argv: list[str]) -> tuple[Path, Path] | None:
    """(source, object) of a plain ``-c`` compile of one C++ file, else None."""
    if "-c" not in argv:
        return None
    sources = [a for a in argv[1:] if a.endswith((".cpp", ".cc", ".cxx"))]
    if len(sources) != 1 or "-MMD" not in argv:
        return None
    if "-o" in argv:
        i = argv.index("-o")
        if i + 1 >= len(argv):
            return None
        obj = Path(argv[i + 1])
    else:
        obj = Path(Path(sources[0]).stem + ".o")
    return Path(sources[0]), obj


def _deps(dep_file: Path) -> list[Path]:
    """The files a ``-MMD`` dependency file lists (make syntax: ``target: dep dep \\``)."""
    text = dep_file.read_text().replace("\\\n", " ")
    _, _, rest = text.partition(":")
    return [Path(p) for p in rest.split()]


def _outside(path: Path, build_dir: Path) -> bool:
    try:
        path.resolve().relative_to(build_dir)
    except ValueError:
        return True
    return False


def _key(argv: list[str], obj: Path) -> str:
    compiler = shutil.which(argv[0]) or argv[0]
    st = os.stat(compiler)
    cmd = [a for a in argv if a != str(obj)]
    h = hashlib.sha256(
        json.dumps([os.path.realpath(compiler), st.st_size, st.st_mtime_ns, cmd]).encode()
    )
    return h.hexdigest()[:32]


def _hit(entry: Path) -> bool:
    try:
        manifest = json.loads((entry / "manifest.json").read_text())
        return all(_hash_file(Path(p)) == digest for p, digest in manifest.items())
    except (OSError, ValueError, AttributeError):
        return False


def _store(entry: Path, obj: Path, dep_file: Path, deps: list[Path]) -> None:
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=entry.parent))
    try:
        shutil.copy2(obj, tmp / "object.o")
        shutil.copy2(dep_file, tmp / "object.d")
        manifest = {str(p.resolve()): _hash_file(p) for p in deps}
        (tmp / "manifest.json").write_text(json.dumps(manifest))
        if entry.exists():  # another worker stored it first
            shutil.rmtree(tmp)
            return
        os.replace(tmp, entry)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


def _compile(argv: list[str]) -> int:
    return subprocess.run(argv, check=False).returncode


def main(args: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if args is None else args)
    if len(args) < 3 or args[0] != "--dir":
        print("usage: python -m hil.sim._objcache --dir DIR COMPILER ARGS...", file=sys.stderr)
        return 2
    cache, argv = Path(args[1]), args[2:]
    parsed = _parse(argv)
    build_dir = Path.cwd().resolve()
    if parsed is None or not _outside(parsed[0], build_dir):
        return _compile(argv)
    obj = parsed[1]
    dep_file = obj.with_suffix(".d")
    entry = cache / _key(argv, obj)
    if _hit(entry):
        shutil.copyfile(entry / "object.o", obj)
        shutil.copyfile(entry / "object.d", dep_file)
        return 0
    status = _compile(argv)
    if status != 0 or not dep_file.is_file():
        return status
    deps = _deps(dep_file)
    if deps and all(_outside(p, build_dir) for p in deps):
        _store(entry, obj, dep_file, deps)
    return status


if __name__ == "__main__":
    sys.exit(main())
