import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    phone_number = models.CharField(max_length=20, blank=True)


class Article(models.Model):
    """Content with an integer primary key."""

    title = models.CharField(max_length=100)

    def get_absolute_url(self):
        # A title that is a URL is where the article lives (the open view's redirect tests).
        if self.title.startswith(("//", "http:", "https:", "javascript:")):
            return self.title
        return f"/articles/{self.pk}/"


class Document(models.Model):
    """Content with a UUID primary key."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    title = models.CharField(max_length=100)
