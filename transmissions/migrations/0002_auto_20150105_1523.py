"""0.2's second migration (its name kept): the Trigger table goes, trigger_name is indexed with the user."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("transmissions", "0001_initial"),
    ]

    operations = [
        migrations.AlterIndexTogether(
            name="notification",
            index_together={
                ("datetime_processed", "datetime_scheduled"),
                ("target_user", "datetime_scheduled"),
                ("target_user", "trigger_name", "datetime_processed"),
            },
        ),
        migrations.RemoveField(model_name="notification", name="trigger"),
        migrations.DeleteModel(name="Trigger"),
    ]
