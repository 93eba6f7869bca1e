"""What a transmissions 0.2 database holds, written out for the upgrade tests and benchmark.

The DDL is the table exactly as 0.2's four migrations left it under Django 1.9: it was
dumped (``pg_dump -s``, ``SHOW CREATE TABLE``, ``.schema``) from databases migrated by
Django 1.9.13 on Python 2.7 with 0.2.5's migrations, and is written here by hand with the
user table of this test project (``tests_user``) for ``auth_user``. Index and constraint
names are Django 1.9's, so the upgrade cannot rely on today's naming.
"""

import datetime

TABLE = "transmissions_notification"
MIGRATIONS = (
    "0001_initial",
    "0002_auto_20150105_1523",
    "0003_auto_20151221_1716",
    "0004_auto_20161027_1149",
)
# When 0.2's migrations were recorded as applied (any date in its time).
APPLIED = datetime.datetime(2017, 3, 1, 12, 0)

_SQLITE = [
    'CREATE TABLE "transmissions_notification" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, '
    '"uuid" varchar(22) NOT NULL UNIQUE, "trigger_name" varchar(50) NOT NULL, '
    '"content_id" integer unsigned NULL, "data_pickled" text NOT NULL, "datetime_created" datetime NULL, '
    '"datetime_scheduled" datetime NOT NULL, "datetime_processed" datetime NULL, '
    '"datetime_seen" datetime NULL, "datetime_consumed" datetime NULL, '
    '"content_type_id" integer NULL REFERENCES "django_content_type" ("id"), '
    '"target_user_id" integer NOT NULL REFERENCES "tests_user" ("id"), '
    '"trigger_user_id" integer NULL REFERENCES "tests_user" ("id"), "status" integer NOT NULL)',
    'CREATE INDEX "transmissions_notification_75c39b6b" ON "transmissions_notification" ("trigger_name")',
    'CREATE INDEX "transmissions_notification_d3c85448" '
    'ON "transmissions_notification" ("datetime_scheduled")',
    'CREATE INDEX "transmissions_notification_0cc5a0d6" '
    'ON "transmissions_notification" ("datetime_processed")',
    'CREATE INDEX "transmissions_notification_417f1b1c" ON "transmissions_notification" ("content_type_id")',
    'CREATE INDEX "transmissions_notification_35cad009" ON "transmissions_notification" ("target_user_id")',
    'CREATE INDEX "transmissions_notification_941a6dcc" ON "transmissions_notification" ("trigger_user_id")',
    'CREATE INDEX "transmissions_notification_datetime_processed_e95ca88c_idx" '
    'ON "transmissions_notification" ("datetime_processed", "datetime_scheduled")',
    'CREATE INDEX "transmissions_notification_target_user_id_67b40c83_idx" '
    'ON "transmissions_notification" ("target_user_id", "datetime_scheduled")',
    'CREATE INDEX "transmissions_notification_target_user_id_b8d25101_idx" '
    'ON "transmissions_notification" ("target_user_id", "trigger_name", "datetime_processed")',
]

_POSTGRES = [
    'CREATE TABLE "transmissions_notification" ("id" serial NOT NULL PRIMARY KEY, '
    '"uuid" varchar(22) NOT NULL UNIQUE, "trigger_name" varchar(50) NOT NULL, '
    '"content_id" integer NULL CHECK ("content_id" >= 0), "data_pickled" text NOT NULL, '
    '"datetime_created" timestamp with time zone NULL, '
    '"datetime_scheduled" timestamp with time zone NOT NULL, '
    '"datetime_processed" timestamp with time zone NULL, "datetime_seen" timestamp with time zone NULL, '
    '"datetime_consumed" timestamp with time zone NULL, "status" integer NOT NULL, '
    '"content_type_id" integer NULL, "target_user_id" integer NOT NULL, "trigger_user_id" integer NULL)',
    'ALTER TABLE "transmissions_notification" ADD CONSTRAINT '
    '"transmission_content_type_id_4383e936_fk_django_content_type_id" FOREIGN KEY ("content_type_id") '
    'REFERENCES "django_content_type" ("id") DEFERRABLE INITIALLY DEFERRED',
    'ALTER TABLE "transmissions_notification" ADD CONSTRAINT '
    '"transmissions_notifica_trigger_user_id_3c5baf14_fk_auth_user_id" FOREIGN KEY ("trigger_user_id") '
    'REFERENCES "tests_user" ("id") DEFERRABLE INITIALLY DEFERRED',
    'ALTER TABLE "transmissions_notification" ADD CONSTRAINT '
    '"transmissions_notificat_target_user_id_a95a431f_fk_auth_user_id" FOREIGN KEY ("target_user_id") '
    'REFERENCES "tests_user" ("id") DEFERRABLE INITIALLY DEFERRED',
    'CREATE INDEX "transmissions_notification_35cad009" ON "transmissions_notification" ("target_user_id")',
    'CREATE INDEX "transmissions_notification_417f1b1c" ON "transmissions_notification" ("content_type_id")',
    'CREATE INDEX "transmissions_notification_75c39b6b" ON "transmissions_notification" ("trigger_name")',
    'CREATE INDEX "transmissions_notification_941a6dcc" ON "transmissions_notification" ("trigger_user_id")',
    'CREATE INDEX "transmissions_notification_datetime_processed_aef252a8_uniq" '
    'ON "transmissions_notification" ("datetime_processed")',
    'CREATE INDEX "transmissions_notification_datetime_processed_e95ca88c_idx" '
    'ON "transmissions_notification" ("datetime_processed", "datetime_scheduled")',
    'CREATE INDEX "transmissions_notification_datetime_scheduled_b3fb1af2_uniq" '
    'ON "transmissions_notification" ("datetime_scheduled")',
    'CREATE INDEX "transmissions_notification_target_user_id_67b40c83_idx" '
    'ON "transmissions_notification" ("target_user_id", "datetime_scheduled")',
    'CREATE INDEX "transmissions_notification_target_user_id_b8d25101_idx" '
    'ON "transmissions_notification" ("target_user_id", "trigger_name", "datetime_processed")',
    'CREATE INDEX "transmissions_notification_trigger_name_51054d1e_like" '
    'ON "transmissions_notification" ("trigger_name" varchar_pattern_ops)',
    'CREATE INDEX "transmissions_notification_uuid_9d616550_like" '
    'ON "transmissions_notification" ("uuid" varchar_pattern_ops)',
]

_MYSQL = [
    "CREATE TABLE `transmissions_notification` ("
    "`id` int(11) NOT NULL AUTO_INCREMENT, `uuid` varchar(22) NOT NULL, "
    "`trigger_name` varchar(50) NOT NULL, `content_id` int(10) unsigned DEFAULT NULL, "
    "`data_pickled` longtext NOT NULL, `datetime_created` datetime DEFAULT NULL, "
    "`datetime_scheduled` datetime NOT NULL, `datetime_processed` datetime DEFAULT NULL, "
    "`datetime_seen` datetime DEFAULT NULL, `datetime_consumed` datetime DEFAULT NULL, "
    "`status` int(11) NOT NULL, `content_type_id` int(11) DEFAULT NULL, "
    "`target_user_id` int(11) NOT NULL, `trigger_user_id` int(11) DEFAULT NULL, "
    "PRIMARY KEY (`id`), UNIQUE KEY `uuid` (`uuid`), "
    "KEY `transmissions_notification_datetime_processed_e95ca88c_idx` "
    "(`datetime_processed`,`datetime_scheduled`), "
    "KEY `transmissions_notification_target_user_id_67b40c83_idx` (`target_user_id`,`datetime_scheduled`), "
    "KEY `transmissions_content_type_id_4383e936_fk_django_content_type_id` (`content_type_id`), "
    "KEY `transmissions_notification_75c39b6b` (`trigger_name`), "
    "KEY `transmissions_notification_941a6dcc` (`trigger_user_id`), "
    "KEY `transmissions_notification_35cad009` (`target_user_id`), "
    "KEY `transmissions_notification_target_user_id_b8d25101_idx` "
    "(`target_user_id`,`trigger_name`,`datetime_processed`), "
    "KEY `transmissions_notification_datetime_processed_aef252a8_uniq` (`datetime_processed`), "
    "KEY `transmissions_notification_datetime_scheduled_b3fb1af2_uniq` (`datetime_scheduled`), "
    "CONSTRAINT `transmissions_content_type_id_4383e936_fk_django_content_type_id` "
    "FOREIGN KEY (`content_type_id`) REFERENCES `django_content_type` (`id`), "
    "CONSTRAINT `transmissions_notificat_trigger_user_id_3c5baf14_fk_auth_user_id` "
    "FOREIGN KEY (`trigger_user_id`) REFERENCES `tests_user` (`id`), "
    "CONSTRAINT `transmissions_notificati_target_user_id_a95a431f_fk_auth_user_id` "
    "FOREIGN KEY (`target_user_id`) REFERENCES `tests_user` (`id`)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
]

DDL = {"sqlite": _SQLITE, "postgresql": _POSTGRES, "mysql": _MYSQL}

# Notification data as transmissions 0.2 stored it: base64 text of pickle.dumps(data, protocol),
# written by Python 2.7.18. Generated once with ~/.pyenv/versions/2.7.18/bin/python and this
# script (0.2 itself called pickle.dumps(data), i.e. protocol 0, on Python 2):
#
#   import base64, datetime, pickle
#   values = {
#       0: {'subject': 'Hello', 'day': datetime.date(2016, 10, 27), 'count': 3, 'name': u'Zo\xeb'},
#       1: {'when': datetime.datetime(2015, 12, 21, 17, 16, 5, 123456), 'tags': ['a', 'b'],
#           'big': 10L ** 12},
#       2: {'when': datetime.datetime(2017, 1, 5, 15, 23), 'day': datetime.date(2014, 2, 28),
#           'name': u'caf\xe9', 'nested': {'pair': (1, 2)}, 'flag': True, 'nothing': None},
#   }
#   for protocol in (0, 1, 2):
#       print('%d %s' % (protocol, base64.b64encode(pickle.dumps(values[protocol], protocol))))
PY2_PICKLES = {
    0: "KGRwMApTJ2NvdW50JwpwMQpJMwpzUydkYXknCnAyCmNkYXRldGltZQpkYXRlCnAzCihTJ1x4MDdceGUwXG5ceDFiJwpwNAp0"
    "cDUKUnA2CnNTJ25hbWUnCnA3ClZab+sKcDgKc1Mnc3ViamVjdCcKcDkKUydIZWxsbycKcDEwCnMu",
    1: "fXEAKFUDYmlncQFMMTAwMDAwMDAwMDAwMEwKVQR3aGVucQJjZGF0ZXRpbWUKZGF0ZXRpbWUKcQMoVQoH3wwVERAFAeJAcQR0cQVS"
    "cQZVBHRhZ3NxB11xCChVAWFxCVUBYnEKZXUu",
    2: "gAJ9cQAoVQRuYW1lcQFYBQAAAGNhZsOpcQJVBHdoZW5xA2NkYXRldGltZQpkYXRldGltZQpxBFUKB+EBBQ8XAAAAAHEFhXEGUnEH"
    "VQZuZXN0ZWRxCH1xCVUEcGFpcnEKSwFLAoZxC3NVBGZsYWdxDIhVB25vdGhpbmdxDU5VA2RheXEOY2RhdGV0aW1lCmRhdGUKcQ9V"
    "BAfeAhxxEIVxEVJxEnUu",
}
PY2_VALUES = {
    0: {"subject": "Hello", "day": datetime.date(2016, 10, 27), "count": 3, "name": "Zo\xeb"},
    1: {"when": datetime.datetime(2015, 12, 21, 17, 16, 5, 123456), "tags": ["a", "b"], "big": 10**12},
    2: {
        "when": datetime.datetime(2017, 1, 5, 15, 23),
        "day": datetime.date(2014, 2, 28),
        "name": "caf\xe9",
        "nested": {"pair": (1, 2)},
        "flag": True,
        "nothing": None,
    },
}
# Aware datetimes as Django 1.9 made them under USE_TZ: tzinfo pytz.utc (with pytz
# installed, as it nearly always was) or django.utils.timezone.UTC() (without). Same
# interpreter, with pytz 2016.10 and Django 1.9.13 on the path:
#
#   when = datetime.datetime(2016, 10, 27, 11, 49, tzinfo=tz)   # tz: pytz.utc, timezone.UTC()
#   print(base64.b64encode(pickle.dumps({'when': when}, protocol)))   # protocol 0, then 2
PY2_AWARE_PICKLES = {
    (
        "pytz",
        0,
    ): "KGRwMApTJ3doZW4nCnAxCmNkYXRldGltZQpkYXRldGltZQpwMgooUydceDA3XHhlMFxuXHgxYlx4MGIxXHgwMFx4MDBc"
    "eDAwXHgwMCcKcDMKY3B5dHoKX1VUQwpwNAoodFJwNQp0cDYKUnA3CnMu",
    (
        "pytz",
        2,
    ): "gAJ9cQBVBHdoZW5xAWNkYXRldGltZQpkYXRldGltZQpxAlUKB+AKGwsxAAAAAHEDY3B5dHoKX1VUQwpxBClScQWGcQZScQdzLg==",
    (
        "django",
        0,
    ): "KGRwMApTJ3doZW4nCnAxCmNkYXRldGltZQpkYXRldGltZQpwMgooUydceDA3XHhlMFxuXHgxYlx4MGIxXHgwMFx4MDBc"
    "eDAwXHgwMCcKcDMKY2RqYW5nby51dGlscy50aW1lem9uZQpVVEMKcDQKKHRScDUKdHA2ClJwNwpzLg==",
    (
        "django",
        2,
    ): "gAJ9cQBVBHdoZW5xAWNkYXRldGltZQpkYXRldGltZQpxAlUKB+AKGwsxAAAAAHEDY2RqYW5nby51dGlscy50aW1lem9u"
    "ZQpVVEMKcQQpUnEFhnEGUnEHcy4=",
}
AWARE_VALUE = {"when": datetime.datetime(2016, 10, 27, 11, 49, tzinfo=datetime.UTC)}
