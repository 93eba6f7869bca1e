"""Optional URLs: ``path("notifications/", include("transmissions.urls"))``: the inbox, the
preferences and one-click unsubscribe pages, and the Twilio status callback (``webhooks.py``)."""

from django.urls import path

from transmissions import views, webhooks

app_name = "transmissions"
urlpatterns = [
    path("", views.NotificationListView.as_view(), name="inbox"),
    path("<str:uuid>/open", views.NotificationOpenView.as_view(), name="open"),
    path("preferences/", views.PreferencesView.as_view(), name="preferences"),
    path("unsubscribe/<str:token>", views.UnsubscribeView.as_view(), name="unsubscribe"),
    path("twilio/status", webhooks.TwilioStatusCallbackView.as_view(), name="twilio-status"),
]
