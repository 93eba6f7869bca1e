"""Today's schema in one step, for a new database. Replaces 0001-0005 (0.2's four and the upgrade).

A database that ran transmissions 0.2 goes through 0005 instead; Django picks this
migration only where none of the ones it replaces is applied.
"""

import django.db.models.deletion
import django.utils.timezone
import django_extensions.db.fields
from django.conf import settings
from django.db import migrations, models

from transmissions import migration_operations as ops


class Migration(migrations.Migration):
    replaces = [
        ("transmissions", "0001_initial"),
        ("transmissions", "0002_auto_20150105_1523"),
        ("transmissions", "0003_auto_20151221_1716"),
        ("transmissions", "0004_auto_20161027_1149"),
        ("transmissions", "0005_transmissions_1_0"),
    ]

    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Notification",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("uuid", django_extensions.db.fields.ShortUUIDField(blank=True, editable=False, unique=True)),
                ("trigger_name", models.SlugField(max_length=100)),
                ("object_id", models.CharField(blank=True, max_length=64, null=True)),
                ("data_bytes", models.BinaryField(blank=True, db_column="data", editable=False, null=True)),
                ("datetime_created", models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ("datetime_scheduled", models.DateTimeField(default=django.utils.timezone.now)),
                ("datetime_processed", models.DateTimeField(blank=True, null=True)),
                ("datetime_seen", models.DateTimeField(blank=True, null=True)),
                ("datetime_consumed", models.DateTimeField(blank=True, null=True)),
                (
                    "status",
                    models.SmallIntegerField(
                        choices=[
                            (0, "created"),
                            (1, "successfully sent"),
                            (-1, "failed"),
                            (-2, "cancelled"),
                            (-3, "broken"),
                            (2, "processing"),
                        ],
                        default=0,
                    ),
                ),
                ("attempts", models.PositiveSmallIntegerField(default=0, editable=False)),
                ("claimed_until", models.DateTimeField(blank=True, editable=False, null=True)),
                (
                    "dedup_key",
                    models.CharField(blank=True, editable=False, max_length=255, null=True, unique=True),
                ),
                (
                    "content_type",
                    models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        to="contenttypes.contenttype",
                    ),
                ),
                (
                    "target_user",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="notifications",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "trigger_user",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="notifications_sent",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "notification",
                "verbose_name_plural": "notifications",
                "indexes": [
                    models.Index(fields=["status", "datetime_scheduled"], name="transmissions_due_idx"),
                    models.Index(fields=["target_user", "-datetime_created"], name="transmissions_user_idx"),
                    models.Index(fields=["content_type", "object_id"], name="transmissions_content_idx"),
                ],
            },
        ),
        # Unapplying starts here.
        ops.refuse_reversal_over_rows(),
    ]
