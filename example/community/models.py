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
