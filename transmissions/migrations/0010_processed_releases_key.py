""""Processed" has one meaning, held by the database: ``datetime_processed`` is set.

``active_key`` is a stored generated column, unique: ``dedup_key`` while the row is not
processed, and afterwards only a SEND_ONCE-family key (``s:``). ``dedup_key`` stops being
unique itself. So a row marked processed however it got there stops blocking
TRIGGER_ONCE, TRIGGER_ONCE_PER_CONTENT and LAST_ONLY, as in transmissions 0.2; and the
due index holds ``datetime_processed`` too, since a processed row is never due.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("transmissions", "0009_idempotency_key"),
    ]

    operations = [
        migrations.AddField(
            model_name="notification",
            name="active_key",
            field=models.GeneratedField(
                db_persist=True,
                expression=models.Case(
                    models.When(datetime_processed__isnull=True, then=models.F("dedup_key")),
                    models.When(dedup_key__startswith="s:", then=models.F("dedup_key")),
                    default=models.Value(None),
                ),
                output_field=models.CharField(max_length=255, null=True),
                unique=True,
            ),
        ),
        migrations.AlterField(
            model_name="notification",
            name="dedup_key",
            field=models.CharField(blank=True, editable=False, max_length=255, null=True),
        ),
        # The due-query also reads datetime_processed: from the index, not the table.
        migrations.RemoveIndex(model_name="notification", name="transmissions_due_idx"),
        migrations.AddIndex(
            model_name="notification",
            index=models.Index(
                fields=["status", "datetime_scheduled", "datetime_processed"], name="transmissions_due_idx"
            ),
        ),
    ]
