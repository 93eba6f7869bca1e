from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_models_and_migrations_do_not_drift():
    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit:
        pytest.fail(f"Models and migrations drift:\n{out.getvalue()}")


@pytest.mark.django_db
@pytest.mark.parametrize("setting", ["django.db.models.AutoField", "django.db.models.BigAutoField"])
def test_host_default_auto_field_makes_no_migration(settings, setting):
    settings.DEFAULT_AUTO_FIELD = setting
    out = StringIO()
    try:
        call_command("makemigrations", "transmissions", "--check", "--dry-run", stdout=out)
    except SystemExit:
        pytest.fail(out.getvalue())
