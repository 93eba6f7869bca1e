from django.contrib import admin
from django.urls import include, path

from community import views

urlpatterns = [
    path("", views.home, name="home"),
    path("posts/<int:pk>/", views.post_detail, name="post"),
    path("accounts/", include("django.contrib.auth.urls")),
    # The inbox (list + open) that transmissions ships.
    path("notifications/", include("transmissions.urls")),
    path("admin/", admin.site.urls),
]
