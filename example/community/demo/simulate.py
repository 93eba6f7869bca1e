"""Make users, posts, comments and likes, triggering each message as a real site would."""

import datetime
import zoneinfo
from collections import Counter, defaultdict

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from community.messages import (
    DraftReminder,
    LikesUpdate,
    LoginCodeSMS,
    NewCommentEmail,
    NewCommentInApp,
    WelcomeEmail,
    WelcomeSMS,
    reply,
)
from community.models import Comment, Post, User
from transmissions.preferences import set_preference

DEMO_USERNAME = DEMO_PASSWORD = "demo"
FIRST_NAMES = "Ada Grace Alan Linus Barbara Ken Margaret Dennis Frances Edsger Radia Guido".split()
TOPICS = "Django SQLite Celery PostgreSQL Python queues emails caching testing migrations".split()
IDEAS = ["Notes on", "Why I love", "A week with", "Ten tips for", "Lessons from", "Getting started with"]
REPLIES = ["Great post!", "Thanks for sharing.", "I disagree, but nicely put.", "+1", "Bookmarked."]


# Zones around the globe: at any hour, it is night (22:00-05:00) in at least one of them.
ZONES = [
    "Pacific/Honolulu", "America/Los_Angeles", "America/New_York", "America/Sao_Paulo",
    "Europe/London", "Europe/Berlin", "Asia/Kolkata", "Asia/Tokyo", "Australia/Sydney",
    "Pacific/Auckland",
]  # fmt: skip


def night_zones(now):
    """The zones of ZONES where ``now`` is between 22:00 and 05:00: inside quiet hours
    (22:00-07:00) for two hours at least, longer than the demo runs."""
    return [z for z in ZONES if not 5 <= now.astimezone(zoneinfo.ZoneInfo(z)).hour < 22]


def put_to_sleep(users, rng, now):
    """Give a tenth of the users (at least one, never ``demo``) a zone where it is night now, so
    that they keep quiet hours; the others none. Return how many sleep."""
    others = [u for u in users if u.username != DEMO_USERNAME]
    asleep = rng.sample(others, max(1, len(others) // 10)) if others else []
    zones = night_zones(now)
    for user in asleep:
        user.timezone = rng.choice(zones)
    User.objects.filter(pk__in=[u.pk for u in users]).update(timezone="")
    User.objects.bulk_update(asleep, ["timezone"])
    return len(asleep)


class Tally:
    """How many times each message was triggered, refused by its behaviour, and batched into a
    digest that an earlier trigger opened (no row of its own: an item of that digest)."""

    def __init__(self):
        self.triggered, self.refused, self.batched = Counter(), Counter(), Counter()
        self.digests = set()
        # Users who turned comment emails off between trigger and processing.
        self.opted_out_users = 0
        # Users for whom it is night now: they keep quiet hours (put_to_sleep()).
        self.asleep_users = 0

    def trigger_event(self, escalation, user, **kwargs):
        """Trigger an escalation: each of its steps counts as a trigger of its message."""
        steps = escalation.trigger(user, **kwargs)
        for name in escalation.trigger_names:
            self.triggered[name] += 1
            self.refused[name] += not steps
        return steps

    def trigger(self, message_cls, user, **kwargs):
        self.triggered[message_cls.trigger_name] += 1
        notification = message_cls.trigger(user, **kwargs)
        if notification is None:
            self.refused[message_cls.trigger_name] += 1
        elif getattr(message_cls, "digest", None) is not None:
            if notification.pk in self.digests:
                self.batched[message_cls.trigger_name] += 1
            self.digests.add(notification.pk)
        return notification

    @property
    def created(self):
        return sum(self.triggered.values()) - sum(self.refused.values()) - sum(self.batched.values())


def ensure_users(count, rng):
    """Return (all demo users, the ones created now); ``demo`` first. Safe to run again."""
    names = [DEMO_USERNAME] + [f"user{i:04d}" for i in range(1, count)]
    existing = set(User.objects.filter(username__in=names).values_list("username", flat=True))
    password = make_password(DEMO_PASSWORD)  # hashed once: every demo user signs in with "demo"
    new = []
    for name in names:
        if name in existing:
            continue
        first = "Demo" if name == DEMO_USERNAME else rng.choice(FIRST_NAMES)
        roll = rng.random()
        # Most users have a valid number. Some have none, or one not in E.164 form: the SMS
        # channel cancels theirs. A few have one too short for the provider (the example's
        # backend), which refuses it: FAILED.
        phone = (
            "" if roll < 0.03
            else "555-01" if roll < 0.05
            else "+155501" if roll < 0.07
            else f"+1555{rng.randrange(10**7):07d}"
        )  # fmt: skip
        new.append(
            User(
                username=name,
                first_name=first,
                email=f"{name}@example.com",
                phone_number="+15550000000" if name == DEMO_USERNAME else phone,
                password=password,
                # A third write in German: their notifications come in German.
                language="de" if name != DEMO_USERNAME and rng.random() < 1 / 3 else "en",
                is_staff=name == DEMO_USERNAME,
                is_superuser=name == DEMO_USERNAME,
            )
        )
    User.objects.bulk_create(new, batch_size=500)
    users = sorted(User.objects.filter(username__in=names), key=lambda u: (u.username != DEMO_USERNAME, u.pk))
    new_names = {u.username for u in new}
    return users, [u for u in users if u.username in new_names]


def make_posts(users, rng):
    """Each user writes one to four posts (the demo user two dozen); a quarter are drafts.

    The demo user's first two posts are drafts, so that their inbox shows a reminder.
    """
    posts = []
    for user in users:
        is_demo = user.username == DEMO_USERNAME
        for i in range(24 if is_demo else rng.randint(1, 4)):
            title = f"{rng.choice(IDEAS)} {rng.choice(TOPICS)}"
            posts.append(
                Post(
                    author=user,
                    title=title,
                    body=f"Some thoughts about {title}.",
                    published=(i >= 2) if is_demo else rng.random() > 0.25,
                )
            )
    Post.objects.bulk_create(posts, batch_size=500)
    return list(Post.objects.filter(pk__in=[p.pk for p in posts]).select_related("author"))


def simulate(users, new_users, later, rng, progress):
    """Trigger a realistic mix of every message; return the Tally.

    ``later`` (seconds): likes updates and draft reminders are due between later/2 and later.
    A reply's hour is compressed: its event starts an hour earlier, so the in-app entry and
    the SMS are due at once and the email ``later`` seconds from now. So is the comments'
    hourly digest: each comment counts as an hour old, so the digest it opens is due ``later``
    seconds from now, and the run's later comments to that user join it.
    """
    tally = Tally()
    tally.asleep_users = put_to_sleep(users, rng, timezone.now())
    posts = make_posts(users, rng)
    published = [p for p in posts if p.published]
    demo_posts = [p for p in published if p.author.username == DEMO_USERNAME] or published
    drafts = [p for p in posts if not p.published]
    author_likes = defaultdict(int)
    for row in Post.objects.values("author").annotate(n=Sum("likes")):
        author_likes[row["author"]] = row["n"] or 0
    now = timezone.now()

    def soon():
        return now + datetime.timedelta(seconds=rng.uniform(later / 2, later))

    commented = now - NewCommentEmail.digest.window + datetime.timedelta(seconds=later)

    def pick_post():
        # The demo user is popular, so their inbox has plenty to show.
        return rng.choice(demo_posts if rng.random() < 0.25 else published)

    new_ids = {u.pk for u in new_users}
    draft_by_author = defaultdict(list)
    for post in drafts:
        draft_by_author[post.author_id].append(post)
    comments, likes = [], Counter()
    commenters = defaultdict(list)  # post pk -> who commented on it so far
    replied = now - reply.steps[-1].after
    for done, user in enumerate(rng.sample(users, len(users)), 1):
        with transaction.atomic():
            if user.pk in new_ids:  # sign-up; a fifth of them submit the form twice
                tally.trigger(WelcomeEmail, user)
                for _ in range(2 if rng.random() < 0.2 else 1):
                    tally.trigger(WelcomeSMS, user)
            elif rng.random() < 0.1:  # "send me the welcome SMS again": SEND_ONCE refuses
                tally.trigger(WelcomeSMS, user)
            for _ in range(3):
                tally.trigger(LoginCodeSMS, user, data={"code": f"{rng.randrange(10**6):06d}"})
            for post in draft_by_author[user.pk]:
                tally.trigger(DraftReminder, user, content=post, datetime_scheduled=soon())
            for _ in range(8):
                post = pick_post()
                if post.author_id != user.pk:
                    comments.append(Comment(post=post, author=user, text=rng.choice(REPLIES)))
                    tally.trigger(NewCommentInApp, post.author, trigger_user=user, content=post)
                    tally.trigger(
                        NewCommentEmail,
                        post.author,
                        trigger_user=user,
                        content=post,
                        datetime_scheduled=commented,
                    )
                    # A reply in the thread: the last one who commented on it hears of it.
                    earlier = [u for u in commenters[post.pk] if u.pk not in (user.pk, post.author_id)]
                    if earlier:
                        start = replied + datetime.timedelta(seconds=rng.uniform(later / 2, later))
                        tally.trigger_event(
                            reply, earlier[-1], trigger_user=user, content=post, datetime_scheduled=start
                        )
                    commenters[post.pk].append(user)
            for _ in range(16):
                post = pick_post()
                if post.author_id != user.pk:
                    likes[post.pk] += 1
                    author_likes[post.author_id] += 1
                    data = {"likes": author_likes[post.author_id]}
                    tally.trigger(
                        LikesUpdate,
                        post.author,
                        trigger_user=user,
                        content=post,
                        data=data,
                        datetime_scheduled=soon(),
                    )
        progress.update(done, f"users, {tally.created} notifications")
    Comment.objects.bulk_create(comments, batch_size=500)
    with transaction.atomic():
        for pk, n in likes.items():
            Post.objects.filter(pk=pk).update(likes=F("likes") + n)
    # A sixth of the users turn comment emails off now, after those were triggered and before
    # they are processed: the worker honours the choice (cancelled, "opted-out: ...").
    quiet = [u for u in users if u.username != DEMO_USERNAME and rng.random() < 1 / 6]
    for user in quiet:
        set_preference(user, "comments", "email", False)
    tally.opted_out_users = len(quiet)
    # Half of the drafts get published before their reminder is due: those reminders cancel.
    # (The demo user publishes their second draft and leaves the first.)
    demo_drafts = [p for p in drafts if p.author.username == DEMO_USERNAME]
    publish = [p for p in drafts if p not in demo_drafts and rng.random() < 0.5] + demo_drafts[:1]
    Post.objects.filter(pk__in=[p.pk for p in publish]).update(published=True)
    return tally
