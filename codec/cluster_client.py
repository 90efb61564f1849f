"""The connection to a Dask scheduler that pack and unpack --cluster share (Dask's distributed is an optional
extra, imported only here and only when a cluster is asked for)."""

from __future__ import annotations

from typing import Any

from .errors import AecError

HOW_TO_INSTALL = "pip install 'aec-codec[cluster]'"
CONNECT_TIMEOUT = 10  # seconds to reach the scheduler


def connect(address: str) -> Any:
    """A dask.distributed Client for the scheduler at `address`; AecError if it cannot be had."""
    try:
        from distributed import Client  # an optional extra: only --cluster needs it
    except ImportError:
        raise AecError(f"--cluster needs Dask's distributed: {HOW_TO_INSTALL}") from None
    try:
        return Client(address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as err:
        raise AecError(f"{address}: cannot reach the Dask scheduler ({err})") from None
