"""0.2's last migration (its name kept): status defaults to CREATED (0) and loses its index."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("transmissions", "0003_auto_20151221_1716"),
    ]

    operations = [
        migrations.AlterField(
            model_name="notification",
            name="status",
            field=models.IntegerField(default=0),
        ),
    ]
