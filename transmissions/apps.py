from django.apps import AppConfig
from django.core import checks
from django.core.signals import setting_changed
from django.db.models.signals import pre_migrate
from django.utils.module_loading import autodiscover_modules

from transmissions.channels.checks import check_channels
from transmissions.channels.push_checks import check_push
from transmissions.checks import check_settings, check_unknown_statuses
from transmissions.conf import conf
from transmissions.escalation import check_escalations
from transmissions.legacy import check_legacy_keys
from transmissions.migration_operations import refuse_downgrade_plan
from transmissions.providers import on_anymail_tracking
from transmissions.sendrate import check_send_rates


class TransmissionsConfig(AppConfig):
    name = "transmissions"
    verbose_name = "Transmissions"
    # Explicit, so the host project's DEFAULT_AUTO_FIELD never makes a migration here.
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        checks.register(check_settings)
        checks.register(check_channels)
        checks.register(check_push)
        checks.register(check_escalations)
        checks.register(check_send_rates)
        # A database check: migrate and `check --database` run it.
        checks.register(check_legacy_keys, checks.Tags.database)
        checks.register(check_unknown_statuses, checks.Tags.database)
        setting_changed.connect(conf.clear_cache, dispatch_uid="transmissions.conf")
        # Undoing the 0.2 upgrade over rows is refused before any migration is unapplied.
        pre_migrate.connect(refuse_downgrade_plan, dispatch_uid="transmissions.downgrade")
        # Workers must know every message without importing views.
        autodiscover_modules("messages", "notifications")
        try:
            from anymail.signals import tracking
        except ImportError:  # the anymail extra is optional
            pass
        else:
            tracking.connect(on_anymail_tracking, dispatch_uid="transmissions.tracking")
