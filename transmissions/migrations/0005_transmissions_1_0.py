"""From transmissions 0.2's table to today's, keeping every row (see transmissions/upgrade.py).

Not atomic: the rows are copied in batches of short transactions, and the exclusive
locks are held only by the steps that change the table's structure. Unapplying it
refuses while the table holds rows (its last operation).
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from transmissions import migration_operations as ops
from transmissions import upgrade

STATUS_CHOICES = [
    (0, "created"),
    (1, "successfully sent"),
    (-1, "failed"),
    (-2, "cancelled"),
    (-3, "broken"),
    (2, "processing"),
]


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("transmissions", "0004_auto_20161027_1149"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(upgrade.refuse_later_releases, ops.noop, elidable=False),
        # 1. 0.2's indexes that today's schema has not: fewer indexes to keep up while copying.
        migrations.AlterIndexTogether(name="notification", index_together=set()),
        migrations.AlterField(
            model_name="notification",
            name="datetime_processed",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="notification",
            name="datetime_scheduled",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.RunPython(upgrade.widen_datetimes, ops.noop, elidable=False),
        # 2. New columns: nullable, or with a database default while 0.2 code may still insert.
        migrations.AddField(
            model_name="notification",
            name="object_id",
            field=models.CharField(blank=True, max_length=64, null=True),
        ),
        migrations.AddField(
            model_name="notification",
            name="data_bytes",
            field=models.BinaryField(blank=True, db_column="data", editable=False, null=True),
        ),
        migrations.AddField(
            model_name="notification",
            name="attempts",
            field=models.PositiveSmallIntegerField(db_default=0, default=0, editable=False),
        ),
        migrations.AddField(
            model_name="notification",
            name="claimed_until",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="notification",
            name="dedup_key",
            field=models.CharField(blank=True, editable=False, max_length=255, null=True, unique=True),
        ),
        # 3. The rows, in batches; then the old columns go, and the types change.
        migrations.RunPython(upgrade.copy_rows, ops.noop, elidable=False),
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(upgrade.drop_old_columns, upgrade.add_old_columns)],
            state_operations=[
                migrations.RemoveField(model_name="notification", name="content_id"),
                migrations.RemoveField(model_name="notification", name="data_pickled"),
            ],
        ),
        # One rewrite of the table on PostgreSQL for these three.
        migrations.RunPython(upgrade.retype_columns, upgrade.unretype_columns, elidable=False),
        ops.AlterFieldElsewhere(
            model_name="notification",
            name="status",
            field=models.SmallIntegerField(choices=STATUS_CHOICES, default=0),
        ),
        ops.AlterFieldElsewhere(
            model_name="notification",
            name="id",
            field=models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID"),
        ),
        migrations.AlterField(
            model_name="notification",
            name="trigger_name",
            field=models.SlugField(max_length=100),
        ),
        ops.AlterFieldElsewhere(
            model_name="notification",
            name="datetime_created",
            field=models.DateTimeField(default=django.utils.timezone.now, editable=False),
        ),
        migrations.AlterField(
            model_name="notification",
            name="attempts",
            field=models.PositiveSmallIntegerField(default=0, editable=False),
        ),
        migrations.AlterField(
            model_name="notification",
            name="datetime_seen",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="notification",
            name="datetime_consumed",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="notification",
            name="trigger_user",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="notifications_sent",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterModelOptions(
            name="notification",
            options={"verbose_name": "notification", "verbose_name_plural": "notifications"},
        ),
        # 4. Today's indexes, then the foreign keys' own indexes they make redundant (in this
        # order: MySQL keeps an index on every foreign key column).
        ops.AddIndexConcurrently(
            model_name="notification",
            index=models.Index(fields=["status", "datetime_scheduled"], name="transmissions_due_idx"),
        ),
        ops.AddIndexConcurrently(
            model_name="notification",
            index=models.Index(fields=["target_user", "-datetime_created"], name="transmissions_user_idx"),
        ),
        ops.AddIndexConcurrently(
            model_name="notification",
            index=models.Index(fields=["content_type", "object_id"], name="transmissions_content_idx"),
        ),
        migrations.AlterField(
            model_name="notification",
            name="content_type",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                to="contenttypes.contenttype",
            ),
        ),
        migrations.AlterField(
            model_name="notification",
            name="target_user",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="notifications",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        # Unapplying starts here.
        ops.refuse_reversal_over_rows(),
    ]
