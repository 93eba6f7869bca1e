"""Channels: the classes a message derives from, each in its own module.

``base.BaseChannel`` (the template method every channel follows), ``email``, ``sms`` and
``twilio``, ``push``, ``inapp``; ``checks`` and ``push_checks`` hold their system checks.
"""
