"""One exception hierarchy, rooted in :class:`TransmissionsError`.

Configuration mistakes (a bad ``@message`` call, a clashing trigger name) raise
``ImproperlyConfigured`` subclasses instead, so that no "fail silently" path swallows them.
"""

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError


class TransmissionsError(Exception):
    """Root of every runtime error raised by transmissions."""


class DuplicateNotification(TransmissionsError):
    """The message's behaviour refused the trigger (raised only when ``silent=False``)."""


class UnknownTriggerException(TransmissionsError, LookupError):
    """No message class is registered under this trigger name."""


class InvalidTrigger(TransmissionsError, ValueError):
    """``trigger()`` was given bad input; nothing was written."""


class DataSerializationError(InvalidTrigger):
    """The configured serializer cannot store the ``data`` value."""


class DataDecodeError(TransmissionsError):
    """Stored ``data`` cannot be read back by the configured serializer."""


class ChannelSendException(TransmissionsError):
    """A channel failed to send; the notification ends FAILED."""


class TransientChannelError(ChannelSendException):
    """A channel failed for a reason that may pass (timeout, 5xx, rate limit).

    The notification is rescheduled with exponential backoff until
    ``TRANSMISSIONS_MAX_ATTEMPTS`` is reached, then it ends FAILED.
    """


class MessageRegistrationError(ImproperlyConfigured):
    """``@message`` was used wrongly (bad name, unknown behaviour, not a channel)."""


class AlreadyRegistered(MessageRegistrationError):
    """Another message class already uses this trigger name."""


class DowngradeRefused(TransmissionsError, CommandError):
    """Unapplying transmissions' migrations would drop or cut down stored notifications."""


class UpgradeRefused(TransmissionsError, CommandError):
    """The database is not one migration 0005 knows how to upgrade; nothing was changed."""
