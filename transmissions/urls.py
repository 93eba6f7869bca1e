"""Optional inbox URLs: ``path("notifications/", include("transmissions.urls"))``."""

from django.urls import path

from transmissions import views

app_name = "transmissions"
urlpatterns = [
    path("", views.NotificationListView.as_view(), name="inbox"),
    path("<str:uuid>/open", views.NotificationOpenView.as_view(), name="open"),
]
