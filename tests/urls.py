from django.contrib import admin
from django.urls import include, path

from tests import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("notifications/", include("transmissions.urls")),
    path("trigger/", views.trigger_durable),
]
