"""Every message the community sends; transmissions imports this module at start-up.

Each class has an ``inbox_text()`` used by the inbox (``{% notification_text %}``).
"""

import datetime

from django.utils.text import Truncator
from django.utils.translation import gettext, gettext_lazy

from transmissions import TriggerBehavior, message, unsubscribe
from transmissions.channels.base import BaseChannel
from transmissions.channels.email import DefaultEmailMessage
from transmissions.channels.push import PushMessage
from transmissions.channels.sms import DefaultSMSMessage
from transmissions.escalation import Escalation, Step


def _who(user):
    # Other people are named by username, as on every page of the site: unique, unlike
    # first names. (A message greets its own recipient by first name: _hello().)
    return user.get_username() if user is not None else "Someone"


def _hello(user):
    return user.first_name or user.get_username()


def _title(post):
    return Truncator(post.title).chars(60) if post is not None else "a deleted post"


class InAppMessage(BaseChannel):
    """Shown only in the inbox: the notification row is the delivery, nothing to transmit."""

    def send(self):
        return None


# Sign-up: a welcome email (sent every time it is triggered) ...
# Written in its recipient's language (User.language): the worker sends each notification
# under it, so gettext() and the lazy subject come out in German for a German speaker.
@message("welcome-email", subject=gettext_lazy("Welcome to the community!"))
class WelcomeEmail(DefaultEmailMessage):
    def send(self):
        self.body = gettext(
            "Hi %(name)s,\n\nThanks for joining. Write your first post, "
            "and we'll tell you when people comment on it.\n"
        ) % {"name": _hello(self.target_user)}
        super().send()

    def inbox_text(self):
        return gettext("Welcome to the community! We emailed you a few tips.")


# ... and a welcome SMS that is only ever sent once, however often sign-up is submitted.
@message("welcome-sms", behavior=TriggerBehavior.SEND_ONCE)
class WelcomeSMS(DefaultSMSMessage):
    def create_message(self):
        return f"Hey {_hello(self.target_user)}, welcome to the community!"

    def inbox_text(self):
        return "We texted you a welcome message."


# Comments: an entry in the inbox at once, and one email an hour with every comment of the
# hour (a digest, docs/digests.md): "3 new comments on 2 posts". Both are in the category
# "comments" (settings.TRANSMISSIONS_CATEGORIES), which their recipient can turn off per
# channel: on the preferences page, or with the email's one-click unsubscribe link; and the
# recipient may choose how often the email comes (preferences.set_frequency()).
@message("comment-inapp", channel="inapp", category="comments")
class NewCommentInApp(InAppMessage):
    def inbox_text(self):
        return f"{_who(self.trigger_user)} commented on your post “{_title(self.content)}”"


@message(
    "new-comment",
    digest=datetime.timedelta(hours=1),
    subject="New comments on your posts",
    category="comments",
)
class NewCommentEmail(DefaultEmailMessage):
    def send(self):
        self.body = f"Hi {_hello(self.target_user)},\n\n{self.summary()}:\n"
        for post, who in self.by_post().items():
            self.body += f"- “{_title(post)}”: {', '.join(who)}\n"
        # The same link as the List-Unsubscribe header's.
        self.body += f"\nNo more of these: {unsubscribe.url_for(self.notification)}\n"
        super().send()

    def by_post(self):
        """Who commented, by post, in the order the comments came (deleted posts left out)."""
        found = {}
        for item in self.digest_items:
            if item.content is not None:
                found.setdefault(item.content, []).append(_who(item.trigger_user))
        return found

    def summary(self):
        comments, posts = self.digest_count, len({item.object_id for item in self.digest_items})
        return (
            f"{comments} new comment{'s' if comments != 1 else ''} on {posts} post{'s' if posts != 1 else ''}"
        )

    def check_validity(self):
        # Every post it would talk about was deleted: nothing to say.
        return bool(self.by_post()) and super().check_validity()

    def inbox_text(self):
        return f"We emailed you about {self.summary()}."


# A reminder scheduled for later, cancelled if the draft was published meanwhile.
@message("draft-reminder", subject="Your draft is waiting", category="reminders")
class DraftReminder(DefaultEmailMessage):
    def check_validity(self):
        post = self.content
        return post is not None and not post.published and super().check_validity()

    def send(self):
        self.body = f"You started “{self.content.title}” but haven't published it yet."
        super().send()

    def inbox_text(self):
        return f"Reminder: your draft “{_title(self.content)}” is still unpublished."


# A status update: only the latest one matters, so a new one replaces the waiting one.
@message("likes-update", behavior=TriggerBehavior.LAST_ONLY)
class LikesUpdate(InAppMessage):
    def inbox_text(self):
        likes = self.data.get("likes", 0)
        plural = "s" if likes != 1 else ""
        return f"Your posts now have {likes} like{plural} (latest on “{_title(self.content)}”)"


# A one-time sign-in code: a secret, so the row is deleted once it is sent; urgent, so it
# is sent inside its user's quiet hours too.
@message("login-code", behavior=TriggerBehavior.DELETE_AFTER_PROCESSING, urgent=True)
class LoginCodeSMS(DefaultSMSMessage):
    def create_message(self):
        return f"Your sign-in code is {self.data['code']}. It expires in 10 minutes."

    inbox_text = "A sign-in code was sent to your phone."


# A reply in a thread you commented in: one event through three channels. The in-app entry
# at once; a push to the user's browsers 15 minutes later and an email an hour later, each
# only while the entry is unseen (reading the inbox cancels them). No browser subscribed: the
# push step is skipped and the email still goes.
@message("reply-inapp", channel="inapp")
class ReplyInApp(InAppMessage):
    def inbox_text(self):
        return f"{_who(self.trigger_user)} replied in the thread of “{_title(self.content)}”"


@message("reply-push", title="New reply")
class ReplyPush(PushMessage):
    def get_body(self):
        return f"{_who(self.trigger_user)} replied in the thread of “{_title(self.content)}”"

    def get_push_data(self):
        # The service worker opens the post when the notification is clicked.
        post = self.content
        return {**super().get_push_data(), "url": post.get_absolute_url() if post is not None else "/"}

    def inbox_text(self):
        return f"We sent a push to your browser about a reply on “{_title(self.content)}”."


@message("reply-email", subject="Someone replied to your comment")
class ReplyEmail(DefaultEmailMessage):
    def send(self):
        self.body = (
            f"Hi {_hello(self.target_user)},\n\n{_who(self.trigger_user)} replied to your comment "
            f"on “{_title(self.content)}”.\n"
        )
        super().send()

    def inbox_text(self):
        return f"We emailed you about a reply on “{_title(self.content)}”."


reply = Escalation(
    "reply",
    steps=[
        Step(ReplyInApp),
        Step(ReplyPush, after=datetime.timedelta(minutes=15)),
        Step(ReplyEmail, after=datetime.timedelta(hours=1)),
    ],
)
