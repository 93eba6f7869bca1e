"""Push message classes for the push tests (imported by them, so registered before any test runs)."""

import datetime

from django.utils import timezone

from transmissions import message
from transmissions.channels.push import PushMessage


@message("push-comment", title="New comment")
class CommentPush(PushMessage):
    def get_body(self):
        return f"{self.data['author']} commented on your post"

    def get_push_data(self):
        return {**super().get_push_data(), "comment_id": self.data["comment_id"]}


@message("push-webpush-only", title="Web only", body="Only browsers get this")
class WebOnlyPush(PushMessage):
    push_services = ("webpush",)
    ttl = 60


def due_comment(user):
    """A CommentPush for ``user``, due a minute ago."""
    earlier = timezone.now() - datetime.timedelta(minutes=1)
    return CommentPush.trigger(user, data={"author": "Grace", "comment_id": 42}, datetime_scheduled=earlier)
