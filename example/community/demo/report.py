"""The summary table printed at the end of ``manage.py demo``."""

from collections import defaultdict

from django.db.models import Count

from transmissions.models import Notification
from transmissions.registry import registry

S = Notification.Status
COLUMNS = ["triggered", "refused", "sent", "cancelled", "failed", "broken", "deleted", "waiting"]


def summary_rows(since, tally):
    """Return one dict per trigger name (and a total) for the rows created since ``since``."""
    by_status = defaultdict(lambda: defaultdict(int))
    rows = Notification.objects.filter(datetime_created__gte=since).values_list("trigger_name", "status")
    for name, status, n in rows.annotate(n=Count("id")).order_by():
        by_status[name][status] += n
    table = []
    for name in sorted(tally.triggered):
        st = by_status[name]
        created = tally.triggered[name] - tally.refused[name]
        row = {
            "trigger": name,
            "behavior": registry.get(name).behavior.name,
            "triggered": tally.triggered[name],
            "refused": tally.refused[name],
            "sent": st[S.SUCCESSFULLY_SENT],
            "cancelled": st[S.CANCELLED],
            "failed": st[S.FAILED],
            "broken": st[S.BROKEN],
            # DELETE_AFTER_PROCESSING rows are gone once sent or cancelled.
            "deleted": created - sum(st.values()),
            "waiting": st[S.CREATED] + st[S.PROCESSING],
        }
        table.append(row)
    total = {"trigger": "total", "behavior": ""}
    total.update({c: sum(r[c] for r in table) for c in COLUMNS})
    return [*table, total]


def format_table(rows):
    headers = ["trigger", "behavior", *COLUMNS]
    widths = {h: max(len(h), *(len(str(r[h])) for r in rows)) for h in headers}

    def line(values):
        return "  ".join(
            str(values[h]).ljust(widths[h]) if i < 2 else str(values[h]).rjust(widths[h])
            for i, h in enumerate(headers)
        )

    rule = "  ".join("-" * widths[h] for h in headers)
    return "\n".join([line({h: h for h in headers}), rule, *map(line, rows[:-1]), rule, line(rows[-1])])
