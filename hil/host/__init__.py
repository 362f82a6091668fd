"""Host roles: what a host (a platform TSM, the kernel's DOE driver) does, over transports."""

from .doe import DoeMailbox, DoeStatus
from .pci import ExtCapability, find_ext_capabilities, walk_ext_capabilities

__all__ = [
    "DoeMailbox",
    "DoeStatus",
    "ExtCapability",
    "find_ext_capabilities",
    "walk_ext_capabilities",
]
