"""The lab path: what a Linux host with a real device (or the virtual rig) is reached through.

- :mod:`.sysfs`: configuration space through ``/sys/bus/pci/devices/<bdf>/config``;
- :mod:`.tsm`: the kernel TSM sysfs ABI (v6.19), probing for the proposed files;
- :mod:`.lock`: one run at a time per lab rig;
- :mod:`.host_checks`: what a host needs for the ``tsm`` vectors (``hil rigs check``);
- :mod:`.firmware_tap`: what the device firmware on the lab controller saw a TSM do;
- the virtual rig: :mod:`.virtual` (the processes), :mod:`.virtual_fs` (the FUSE tree),
  :mod:`.virtual_kernel` (the emulated host kernel and its TSM), :mod:`.virtual_rp` (its Root
  Port).

Resources (a BDF, a sysfs root, a lock directory) are data; these classes are the drivers.
"""

from .bdf import Bdf
from .lock import RigLock, RigLocked
from .sysfs import SysfsConfigSpace, SysfsError
from .tsm import KernelTsm, TsmError

__all__ = [
    "Bdf",
    "KernelTsm",
    "RigLock",
    "RigLocked",
    "SysfsConfigSpace",
    "SysfsError",
    "TsmError",
]
