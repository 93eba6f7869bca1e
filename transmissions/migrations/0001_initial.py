"""transmissions 0.2's first schema, under 0.2's name, so a 0.2 database continues from here.

Written for this package from the facts in 0.2's schema: a ``Notification`` table and a
``Trigger`` table that 0002 drops again. Fresh databases never run it: they run
``0001_squashed_0005_transmissions_1_0``, which builds today's schema directly.
"""

import django.db.models.deletion
import django_extensions.db.fields
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("contenttypes", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Notification",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("uuid", django_extensions.db.fields.ShortUUIDField(blank=True, editable=False, unique=True)),
                ("trigger_name", models.CharField(db_index=True, max_length=50)),
                ("content_id", models.PositiveIntegerField(blank=True, null=True)),
                ("data_pickled", models.TextField(blank=True, editable=False)),
                ("datetime_created", models.DateTimeField(auto_now_add=True, null=True)),
                ("datetime_scheduled", models.DateTimeField()),
                ("datetime_processed", models.DateTimeField(null=True)),
                ("datetime_seen", models.DateTimeField(null=True)),
                ("datetime_consumed", models.DateTimeField(null=True)),
                ("status", models.IntegerField(db_index=True, default=-2)),
                (
                    "content_type",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        to="contenttypes.contenttype",
                    ),
                ),
                (
                    "target_user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="notifications",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="Trigger",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=50, unique=True)),
                ("message", models.TextField()),
                ("channel", models.IntegerField(db_index=True, default=1)),
                ("behavior", models.IntegerField(db_index=True, default=10)),
            ],
        ),
        migrations.AddField(
            model_name="notification",
            name="trigger",
            field=models.ForeignKey(
                blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, to="transmissions.trigger"
            ),
        ),
        migrations.AddField(
            model_name="notification",
            name="trigger_user",
            field=models.ForeignKey(
                default=None,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="notifications_sent",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterIndexTogether(
            name="notification",
            index_together={
                ("datetime_processed", "datetime_scheduled"),
                ("target_user", "datetime_scheduled"),
                ("target_user", "trigger", "datetime_processed"),
            },
        ),
    ]
