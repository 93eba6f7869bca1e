"""Optional URLs: ``path("notifications/", include("transmissions.urls"))``: the inbox, and the
Twilio status callback (``webhooks.py``)."""

from django.urls import path

from transmissions import views, webhooks

app_name = "transmissions"
urlpatterns = [
    path("", views.NotificationListView.as_view(), name="inbox"),
    path("<str:uuid>/open", views.NotificationOpenView.as_view(), name="open"),
    path("twilio/status", webhooks.TwilioStatusCallbackView.as_view(), name="twilio-status"),
]
