"""Article has an admin page, Document has none: the notification admin links the first."""

from django.contrib import admin

from tests.models import Article

admin.site.register(Article)
