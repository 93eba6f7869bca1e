from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db.migrations.autodetector import MigrationAutodetector
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ProjectState


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


def test_the_0_2_chain_ends_in_the_same_state_as_the_squashed_migration():
    """makemigrations checks the squashed path; a 0.2 database goes through 0001-0005 instead,
    then the migrations added since: both must end in the models' state."""
    for replace in (False, True):
        loader = MigrationLoader(None, ignore_no_migrations=True, replace_migrations=replace)
        leaves = [
            leaf
            for leaf in loader.graph.leaf_nodes("transmissions")
            if replace or leaf[1] != "0001_squashed_0005_transmissions_1_0"
        ]
        assert len(leaves) == 1, leaves
        state = loader.project_state(leaves[0], at_end=True)
        if not replace:  # the 0.2 chain, not the squash
            assert ("transmissions", "0005_transmissions_1_0") in loader.graph.forwards_plan(leaves[0])
        changes = MigrationAutodetector(state, ProjectState.from_apps(apps)).changes(graph=loader.graph)
        assert "transmissions" not in changes, (leaves[0], changes.get("transmissions"))
