"""Model backends behind one small async protocol; see base.py."""

from augment.backends.base import Backend, available_backends, get_backend

__all__ = ["Backend", "available_backends", "get_backend"]
