"""Katib's messages and service stubs, loaded from ``proto/tuner_katib_api.proto`` at run time.

``grpc.protos_and_services`` compiles the file in process (grpcio-tools) and finds it through
``sys.path``, so the ``proto`` directory, which holds nothing but ``.proto`` files, is added
there once. The modules are built on first use and kept.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from types import ModuleType

from tuner.errors import GrpcMissing

PROTO_DIR = Path(__file__).resolve().parent / "proto"
PROTO_FILE = "tuner_katib_api.proto"
INSTALL_HINT = "install the grpc extra: pip install 'tuner[grpc]'"


def require_grpc() -> None:
    """Raises :class:`GrpcMissing` when the ``grpc`` extra is not installed."""
    try:
        import grpc  # noqa: F401
        import grpc_tools  # noqa: F401
    except ImportError as e:
        raise GrpcMissing(f"Katib's gRPC APIs need grpcio and grpcio-tools: {INSTALL_HINT}") from e


@functools.cache
def api() -> tuple[ModuleType, ModuleType]:
    """``(messages, services)``: the ``_pb2`` and ``_pb2_grpc`` modules of Katib's API."""
    require_grpc()
    import grpc

    if str(PROTO_DIR) not in sys.path:
        sys.path.append(str(PROTO_DIR))
    messages, services = grpc.protos_and_services(PROTO_FILE)
    return messages, services
