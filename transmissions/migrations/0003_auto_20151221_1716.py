"""0.2's third migration (its name kept): single-column indexes on the two schedule columns."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("transmissions", "0002_auto_20150105_1523"),
    ]

    operations = [
        migrations.AlterField(
            model_name="notification",
            name="datetime_processed",
            field=models.DateTimeField(db_index=True, null=True),
        ),
        migrations.AlterField(
            model_name="notification",
            name="datetime_scheduled",
            field=models.DateTimeField(db_index=True),
        ),
    ]
