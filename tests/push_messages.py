"""Push message classes for the push tests (imported by them, so registered before any test runs)."""

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
