from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class TransmissionsConfig(AppConfig):
    name = "transmissions"
    verbose_name = "Transmissions"
    # Explicit, so the host project's DEFAULT_AUTO_FIELD never makes a migration here.
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from transmissions import checks  # noqa: F401 - registers the system checks

        # Workers must know every message without importing views.
        autodiscover_modules("messages", "notifications")
