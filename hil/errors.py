"""The error hierarchy, split by who broke what.

- :class:`PeerProtocolError`: the device (or peer) broke the protocol.  A vector that meets one
  fails: the device is out of spec.
- :class:`LocalProtocolError`: this side tried to send something illegal.  A bug in a vector or in
  the host roles: the vector errors.
- :class:`RigError`: the rig could not do its job (a missing device, a dead simulator, a broken rig
  file).  The vector errors.
"""

from __future__ import annotations

__all__ = [
    "DeviceFailure",
    "DoeTimeout",
    "HilError",
    "LocalProtocolError",
    "NotApplicable",
    "PeerProtocolError",
    "RigConfigError",
    "RigError",
]


class HilError(Exception):
    """Base of every error this package raises on purpose."""


class PeerProtocolError(HilError):
    """The peer (device, responder) sent something the protocol does not allow."""


class LocalProtocolError(HilError):
    """This side was asked to send something the protocol does not allow."""


class DoeTimeout(PeerProtocolError):
    """A DOE instance did not answer (or did not finish an abort) within its deadline."""


class DeviceFailure(HilError):
    """A vector's check found the device out of spec (the 'fail' outcome)."""


class RigError(HilError):
    """The rig could not carry out an operation (the 'error' outcome)."""


class RigConfigError(RigError):
    """A rig file is missing, malformed or inconsistent."""


class NotApplicable(HilError):
    """The rig cannot meet what a vector needs (the 'n/a' outcome)."""
