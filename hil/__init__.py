"""hil: hardware-in-the-loop vectors for PCIe device security (DOE, SPDM, IDE, TDISP).

The public API is small: vectors and their context, the error types, and the version.  Codecs
live in :mod:`hil.codec`, host roles in :mod:`hil.host`, transports in :mod:`hil.transport`.
"""

from ._version import __version__
from .errors import (
    DeviceFailure,
    DoeTimeout,
    HilError,
    LocalProtocolError,
    NotApplicable,
    PeerProtocolError,
    RigConfigError,
    RigError,
)
from .vectors import Measurement, Outcome, Vector, VectorContext, vector

__all__ = [
    "DeviceFailure",
    "DoeTimeout",
    "HilError",
    "LocalProtocolError",
    "Measurement",
    "NotApplicable",
    "Outcome",
    "PeerProtocolError",
    "RigConfigError",
    "RigError",
    "Vector",
    "VectorContext",
    "__version__",
    "vector",
]
