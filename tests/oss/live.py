"""A real uvicorn serving an ASGI app on 127.0.0.1, in a thread, on a port the OS picks."""

from statusctl.oss.server import Background as LiveServer

__all__ = ["LiveServer"]
