from django.apps import AppConfig
from django.core import checks
from django.utils.module_loading import autodiscover_modules

from transmissions.channels.checks import check_channels
from transmissions.channels.push_checks import check_push
from transmissions.checks import check_settings


class TransmissionsConfig(AppConfig):
    name = "transmissions"
    verbose_name = "Transmissions"
    # Explicit, so the host project's DEFAULT_AUTO_FIELD never makes a migration here.
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        checks.register(check_settings)
        checks.register(check_channels)
        checks.register(check_push)
        # Workers must know every message without importing views.
        autodiscover_modules("messages", "notifications")
