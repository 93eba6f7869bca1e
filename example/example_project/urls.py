from django.contrib import admin
from django.urls import include, path

from community import views

urlpatterns = [
    path("", views.home, name="home"),
    path("posts/<int:pk>/", views.post_detail, name="post"),
    path("accounts/", include("django.contrib.auth.urls")),
    # The inbox (list + open) that transmissions ships.
    path("notifications/", include("transmissions.urls")),
    # The ESP's delivery webhooks, through django-anymail; transmissions records the events.
    path("anymail/", include("anymail.urls")),
    path("admin/", admin.site.urls),
]
