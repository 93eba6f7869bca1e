"""A tiny community: users write posts, comment on and like each other's posts."""

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.urls import reverse


class User(AbstractUser):
    # DefaultSMSMessage reads this attribute.
    phone_number = models.CharField(max_length=32, blank=True)
    # The language their notifications are written in (TRANSMISSIONS_RECIPIENT_LANGUAGE);
    # empty: LANGUAGE_CODE.
    language = models.CharField(max_length=10, blank=True, choices=[("en", "English"), ("de", "Deutsch")])
    # Where they live ("Asia/Tokyo"; TRANSMISSIONS_RECIPIENT_TIMEZONE): their notifications are
    # written in this zone's time, and a user who gave one keeps quiet hours in it
    # (quiet_hours_of() below). Empty: TIME_ZONE, and no quiet hours.
    timezone = models.CharField(max_length=64, blank=True)


# What the demo's users keep as quiet hours (TRANSMISSIONS_QUIET_HOURS_SOURCE): 22:00-07:00 in
# their own zone once they told us where they live, none otherwise.
QUIET_HOURS = ("22:00", "07:00")


def quiet_hours_of(user):
    return QUIET_HOURS if user.timezone else False


class Post(models.Model):
    author = models.ForeignKey(User, on_delete=models.CASCADE, related_name="posts")
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    published = models.BooleanField(default=True)
    likes = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-pk"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        # Where following a notification about this post lands.
        return reverse("post", args=[self.pk])


class Comment(models.Model):
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(User, on_delete=models.CASCADE, related_name="comments")
    text = models.TextField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created", "pk"]

    def __str__(self) -> str:
        return f"{self.author} on {self.post}"
