from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("mesh", "0005_refusal_counts"),
    ]

    operations = [
        migrations.AddField(
            model_name="node",
            name="agent_python",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name="node",
            name="agent_os",
            field=models.CharField(blank=True, max_length=128),
        ),
    ]
