"""The summary table printed at the end of ``manage.py demo``."""

from collections import Counter, defaultdict

from django.db.models import Count

from transmissions.models import DeliveryEvent, DigestItem, Notification
from transmissions.registry import registry

S = Notification.Status
COLUMNS = ["triggered", "refused", "batched", "sent", "cancelled", "failed", "broken", "deleted", "waiting"]


def summary_rows(since, tally):
    """Return one dict per trigger name (and a total) for the rows created since ``since``."""
    by_status = defaultdict(lambda: defaultdict(int))
    rows = Notification.objects.filter(datetime_created__gte=since).values_list("trigger_name", "status")
    for name, status, n in rows.annotate(n=Count("id")).order_by():
        by_status[name][status] += n
    table = []
    for name in sorted(tally.triggered):
        st = by_status[name]
        created = tally.triggered[name] - tally.refused[name] - tally.batched[name]
        message_cls = registry.get(name)
        row = {
            "trigger": name,
            "behavior": "digest" if message_cls.digest is not None else message_cls.behavior.name,
            "triggered": tally.triggered[name],
            "refused": tally.refused[name],
            "batched": tally.batched[name],
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


def digest_line(since):
    """What the comments' hourly digests did this run, in one line."""
    digests = Notification.objects.filter(trigger_name="new-comment", datetime_created__gte=since)
    sent = digests.filter(status=S.SUCCESSFULLY_SENT)
    sizes = list(
        DigestItem.objects.filter(digest__in=sent)
        .values("digest")
        .annotate(n=Count("id"))
        .values_list("n", flat=True)
    )
    items = DigestItem.objects.filter(digest__in=digests).count()
    return (
        f"{len(sizes)} comment digests sent, holding {sum(sizes)} comments (up to {max(sizes, default=0)} in "
        f"one email); {digests.count()} digests for {items} comments in all: one email an hour per user, "
        "each comment also an in-app entry at once (docs/digests.md)"
    )


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


# The states an email of the demo can end in (a delay is followed by a delivery).
STATES = ["delivered", "opened", "clicked", "bounced", "complained"]
DELIVERY_COLUMNS = ["emails", "events", *STATES]


def delivery_rows(since):
    """Return one dict per email trigger (and a total): the emails sent since ``since``, the
    delivery events recorded for them, and how many ended in each delivery state."""
    sent = Notification.objects.filter(
        channel="email", status=S.SUCCESSFULLY_SENT, datetime_processed__gte=since
    ).exclude(provider_message_id="")
    table = {}
    by_state = sent.values_list("trigger_name", "delivery_state").annotate(n=Count("id")).order_by()
    for name, state, n in by_state:
        row = table.setdefault(name, {"trigger": name, **dict.fromkeys(DELIVERY_COLUMNS, 0)})
        row["emails"] += n
        if state in STATES:
            row[state] += n
    events = DeliveryEvent.objects.filter(notification__in=sent).values_list("notification__trigger_name")
    for (name,), n in Counter(events).items():
        table[name]["events"] = n
    rows = [table[name] for name in sorted(table)]
    total = {"trigger": "total", **{c: sum(r[c] for r in rows) for c in DELIVERY_COLUMNS}}
    return [*rows, total]


def format_delivery(rows):
    headers = ["trigger", *DELIVERY_COLUMNS]
    widths = {h: max(len(h), 14 if h == "trigger" else 0, *(len(str(r[h])) for r in rows)) for h in headers}

    def line(values):
        return "  ".join(
            str(values[h]).ljust(widths[h]) if i == 0 else str(values[h]).rjust(widths[h])
            for i, h in enumerate(headers)
        )

    rule = "  ".join("-" * widths[h] for h in headers)
    return "\n".join([line({h: h for h in headers}), rule, *map(line, rows[:-1]), rule, line(rows[-1])])
