"""Channels: the classes a message derives from. Each lives in its own module."""

from transmissions.channels.base import BaseChannel

__all__ = ["BaseChannel"]
