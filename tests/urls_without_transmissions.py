"""A project that does not include transmissions.urls (system check transmissions.W072)."""

from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
