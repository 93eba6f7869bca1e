from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("community", "0002_user_language"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="timezone",
            field=models.CharField(blank=True, max_length=64),
        ),
    ]
