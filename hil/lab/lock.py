"""One run at a time per lab rig: a lock file holding the owner's PID and host.

A lock whose process no longer exists on this host is stale and is taken over.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from ..errors import RigError

__all__ = ["RigLock", "RigLocked"]


class RigLocked(RigError):
    """Another live run holds the rig."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


class RigLock:
    def __init__(self, rig: str, lock_dir: Path | str) -> None:
        if "/" in rig or rig.startswith("."):
            raise RigError(f"rig name {rig!r} cannot name a lock file")
        self.path = Path(lock_dir) / f"{rig}.lock"
        self.held = False

    def holder(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {"pid": -1, "host": "?", "broken": True}

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                owner = self.holder() or {}
                same_host = owner.get("host") == socket.gethostname()
                if owner.get("broken") or (same_host and not _alive(int(owner.get("pid", -1)))):
                    self.path.unlink(missing_ok=True)  # stale: its process is gone
                    continue
                raise RigLocked(
                    f"rig lock {self.path} is held by pid {owner.get('pid')} on "
                    f"{owner.get('host')}; wait for that run, or remove the file if it is dead"
                ) from None
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self.held = True
            return
        raise RigLocked(f"could not take {self.path}")

    def release(self) -> None:
        if self.held:
            owner = self.holder() or {}
            if owner.get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> RigLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
