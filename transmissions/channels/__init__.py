"""Channels: the classes a message derives from, each in its own module.

``base.BaseChannel`` (the template method every channel follows), ``email``, ``sms`` and
``twilio``, ``push``, ``inapp``; ``checks`` and ``push_checks`` hold their system checks.
``Channel`` is 0.2's wrapper around a notification's message (``wrapper.py``).
"""

from transmissions.channels.wrapper import Channel

__all__ = ["Channel"]
