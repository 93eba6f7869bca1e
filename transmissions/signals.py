"""Signals for projects that need to hook into the pipeline.

Listen to these rather than to Notification's ``pre_save``/``post_save``: the trigger
and claim paths write rows without ``Model.save()`` (one statement for many rows), so
a ``pre_save``/``post_save`` listener makes every trigger take the slower ``save()``
path to be told. These two are sent only when someone listens, and cost nothing
otherwise.
"""

from django.dispatch import Signal

# Sent after trigger() or trigger_many() wrote notifications (not for refused triggers).
# Inside a transaction, sent before it commits.
#   sender: the message class
#   notifications: the list of Notification instances created (saved)
notifications_created = Signal()

# Sent after a worker recorded the outcome of a notification it processed.
#   sender: the message class (Notification when no class is registered under its name)
#   notification: the Notification, as the worker held it (its ``status`` attribute still
#       says PROCESSING; the row holds the outcome)
#   status: the final Notification.Status written
#   reason: why it did not end SUCCESSFULLY_SENT ("" when it did)
#   result: what the channel's send() returned (the provider's answer), or None
notification_finished = Signal()
