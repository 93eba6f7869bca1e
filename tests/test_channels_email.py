"""The email channel, end to end through Django's SMTP backend to a real SMTP server on loopback."""

import logging
import smtplib
import warnings

import pytest
from django.conf import settings
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.test.utils import override_settings

from tests.messages import HtmlOnlyEmail, MyEmailMessage, TemplatedEmail, TransactionalEmail
from tests.servers import SilentServer, SMTPServer, closed_port
from tests.utils import email_settings, make_user
from transmissions import message
from transmissions.channels.email import DefaultEmailMessage, smtp_error
from transmissions.exceptions import ChannelSendException, TransientChannelError
from transmissions.models import Notification
from transmissions.registry import registry
from transmissions.worker import process_all_notifications

pytestmark = pytest.mark.django_db
S = Notification.Status


def smtp(port, timeout=2, **mailers):
    """The default mailer (EMAIL_* before Django 6.1) is SMTP to 127.0.0.1:``port``.

    ``mailers``: more MAILERS aliases, each an SMTP port on 127.0.0.1 (Django 6.1+).
    """
    more = {
        alias: {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": other, "timeout": timeout},
        }
        for alias, other in mailers.items()
    }
    settings = email_settings(host="127.0.0.1", port=port, timeout=timeout, mailers=more)
    return override_settings(**settings, DEFAULT_FROM_EMAIL="noreply@acme.test")


@pytest.fixture
def server():
    with SMTPServer() as server, smtp(server.port):
        yield server


def status(n):
    n.refresh_from_db()
    return n.status


def test_readme_email_arrives_over_smtp(server):
    user = make_user(email="ada@example.com")
    n = MyEmailMessage.trigger(user)
    assert process_all_notifications() == 1
    assert status(n) == S.SUCCESSFULLY_SENT
    [(envelope, received)] = server.handler.messages
    assert envelope.rcpt_tos == ["ada@example.com"]
    assert envelope.mail_from == "noreply@acme.test"
    assert received["Subject"] == "Hello world!"
    assert received.get_content_type() == "text/plain"
    assert received.get_content().strip() == "Hey, let me type a message later"


def test_templated_email_arrives_with_text_and_html_parts(server):
    ada = make_user(first_name="Ada O'Brien <3")
    bob = make_user("bob")
    n = TemplatedEmail.trigger(ada, trigger_user=bob, data={"plan": "pro"})
    process_all_notifications()
    assert status(n) == S.SUCCESSFULLY_SENT
    [(envelope, received)] = server.handler.messages
    assert envelope.rcpt_tos == ["ada@example.com"]
    assert envelope.mail_from == "hello@acme.test"
    # Plain text is not HTML-escaped; the multi-line subject template is one line.
    assert received["Subject"] == "Welcome Ada O'Brien <3, from bob"
    assert received["From"] == "Acme <hello@acme.test>"
    assert received["Reply-To"] == "support@acme.test"
    assert received["X-Campaign"] == "welcome"
    assert received.get_content_type() == "multipart/alternative"
    # Lines end in CRLF on the wire.
    text = received.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
    html = received.get_body(preferencelist=("html",)).get_content().replace("\r\n", "\n")
    assert text == "Hi Ada O'Brien <3,\nyour plan: pro.\n"
    assert html == "<p>Hi <b>Ada O&#x27;Brien &lt;3</b>, your plan: pro.</p>\n"


def test_record_keeps_the_message_id_that_arrived(server):
    n = TemplatedEmail.trigger(make_user())
    channel = TemplatedEmail(Notification.objects.get(pk=n.pk))
    channel.send()
    [(_, received)] = server.handler.messages
    assert channel.provider_message_id == received["Message-ID"]
    assert channel.provider_message_id.startswith("<") and channel.provider_message_id.endswith(">")


def test_the_message_id_is_kept_on_the_notification(server):
    n = TemplatedEmail.trigger(make_user())
    process_all_notifications()
    n.refresh_from_db()
    [(_, received)] = server.handler.messages
    assert n.status == S.SUCCESSFULLY_SENT
    assert n.provider_message_id == received["Message-ID"] != ""


@override_settings(**email_settings("anymail.backends.test.EmailBackend"))
def test_anymail_esp_id_is_kept_rather_than_the_message_id():
    a, b = TemplatedEmail.trigger(make_user()), TemplatedEmail.trigger(make_user("bob"))
    process_all_notifications()
    a.refresh_from_db()
    b.refresh_from_db()
    # anymail's test backend names each message by its place in the outbox.
    by_recipient = {email.to[0]: email for email in mail.outbox}
    for n, address in ((a, "ada@example.com"), (b, "bob@example.com")):
        email = by_recipient[address]
        assert n.provider_message_id == str(email.anymail_status.message_id)
        assert n.provider_message_id != email.extra_headers["Message-ID"]
    assert {a.provider_message_id, b.provider_message_id} == {"0", "1"}


def test_html_only_email_gets_a_text_part_without_tags():
    n = HtmlOnlyEmail.trigger(make_user(first_name="Ada"))
    process_all_notifications()
    assert status(n) == S.SUCCESSFULLY_SENT
    [email] = mail.outbox
    assert email.subject == "Your receipt"
    assert email.body == "Hi Ada, your plan: free.\n"
    assert email.alternatives[0][1] == "text/html"


@pytest.mark.parametrize(
    ("rcpt_reply", "data_reply", "expected", "reason"),
    [
        ("550 5.1.1 <ada@example.com>: no such user", None, S.FAILED, "no such user"),
        ("450 4.2.0 mailbox busy", None, S.CREATED, "mailbox busy"),
        (None, "451 4.3.0 try again later", S.CREATED, "try again later"),
        (None, "554 5.7.1 message refused as spam", S.FAILED, "refused as spam"),
    ],
)
def test_smtp_replies_map_to_outcomes(server, caplog, rcpt_reply, data_reply, expected, reason):
    server.handler.rcpt_reply, server.handler.data_reply = rcpt_reply, data_reply
    n = MyEmailMessage.trigger(make_user())
    process_all_notifications()
    assert status(n) == expected
    assert server.handler.messages == []
    assert reason in caplog.text
    if expected == S.CREATED:  # retried later, with backoff
        assert n.attempts == 1 and n.datetime_processed is None
        assert "Retrying notification" in caplog.text


def test_refused_connection_is_retried(caplog):
    with smtp(closed_port()):
        n = MyEmailMessage.trigger(make_user())
        with pytest.raises(TransientChannelError, match="Email to ada@example.com failed: ConnectionRefused"):
            MyEmailMessage(n).send()
        process_all_notifications()
    assert status(n) == S.CREATED and n.attempts == 1


def test_server_that_never_answers_times_out_and_is_retried():
    with SilentServer() as silent, smtp(silent.port, timeout=0.3):
        n = MyEmailMessage.trigger(make_user())
        with pytest.raises(TransientChannelError, match="timed out"):
            MyEmailMessage(n).send()


def test_retries_end_failed_after_max_attempts():
    with smtp(closed_port()), override_settings(TRANSMISSIONS_MAX_ATTEMPTS=1):
        n = MyEmailMessage.trigger(make_user())
        process_all_notifications()
    assert status(n) == S.FAILED


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (smtplib.SMTPRecipientsRefused({"a@x": (550, b"no")}), False),
        (smtplib.SMTPRecipientsRefused({"a@x": (450, b"busy"), "b@x": (451, b"later")}), True),
        (smtplib.SMTPRecipientsRefused({"a@x": (450, b"busy"), "b@x": (550, b"no")}), False),
        (smtplib.SMTPAuthenticationError(535, b"bad credentials"), False),
        (smtplib.SMTPSenderRefused(421, b"closing", "me@x"), True),
        (smtplib.SMTPServerDisconnected("gone"), True),
        (smtplib.SMTPNotSupportedError("STARTTLS"), False),
        (TimeoutError("timed out"), True),
        (ValueError("bad header"), False),
    ],
)
def test_smtp_error_classification(exc, transient):
    error = smtp_error(exc, "Email to a@x failed")
    assert isinstance(error, ChannelSendException)
    assert isinstance(error, TransientChannelError) is transient
    assert str(error).startswith(f"Email to a@x failed: {type(exc).__name__}")


class ZeroBackend:
    def __init__(self, **kwargs):
        pass

    def send_messages(self, messages):
        return 0


@override_settings(**email_settings("tests.test_channels_email.ZeroBackend"))
def test_backend_that_sends_nothing_is_failed():
    n = MyEmailMessage.trigger(make_user())
    with pytest.raises(ChannelSendException, match="the backend sent nothing"):
        MyEmailMessage(n).send()


def test_email_without_address_is_cancelled():
    user = make_user(email="")
    n = MyEmailMessage.trigger(user)
    process_all_notifications()
    n.refresh_from_db()
    assert n.status == S.CANCELLED and mail.outbox == []


@pytest.fixture
def registered_transactional():
    """TransactionalEmail registered, its alias given as ``@message(..., mailer=...)``."""
    message("transactional-receipt", mailer="transactional")(TransactionalEmail)
    yield TransactionalEmail
    registry.unregister("transactional-receipt")


@pytest.mark.mailers
def test_each_message_goes_through_its_mailer():
    # Django's test runner makes every MAILERS alias locmem, which notes the alias used.
    message("transactional-receipt", mailer="transactional")(TransactionalEmail)
    try:
        TransactionalEmail.trigger(make_user("ada"))
        MyEmailMessage.trigger(make_user("bob"))
        assert process_all_notifications() == 2
    finally:
        registry.unregister("transactional-receipt")
    assert sorted((m.to[0], m.sent_using) for m in mail.outbox) == [
        ("ada@example.com", "transactional"),
        ("bob@example.com", "default"),
    ]


@pytest.mark.mailers
def test_named_mailer_sends_to_its_own_smtp_server(registered_transactional):
    with (
        SMTPServer() as default,
        SMTPServer() as transactional,
        smtp(default.port, transactional=transactional.port),
    ):
        receipt = TransactionalEmail.trigger(make_user("ada"))
        hello = MyEmailMessage.trigger(make_user("bob"))
        assert process_all_notifications() == 2
    assert status(receipt) == status(hello) == S.SUCCESSFULLY_SENT
    [(envelope, received)] = transactional.handler.messages
    assert envelope.rcpt_tos == ["ada@example.com"] and received["Subject"] == "Your receipt"
    [(envelope, received)] = default.handler.messages
    assert envelope.rcpt_tos == ["bob@example.com"] and received["Subject"] == "Hello world!"


@pytest.mark.mailers
@pytest.mark.parametrize(
    ("rcpt_reply", "expected"), [("450 4.2.0 mailbox busy", S.CREATED), ("550 5.1.1 no such user", S.FAILED)]
)
def test_named_mailer_smtp_replies_map_to_outcomes(registered_transactional, caplog, rcpt_reply, expected):
    with (
        SMTPServer() as default,
        SMTPServer() as transactional,
        smtp(default.port, transactional=transactional.port),
    ):
        transactional.handler.rcpt_reply = rcpt_reply
        n = TransactionalEmail.trigger(make_user())
        process_all_notifications()
    assert status(n) == expected
    assert rcpt_reply.split(" ", 2)[2] in caplog.text
    assert default.handler.messages == transactional.handler.messages == []


@pytest.mark.mailers
def test_mailer_missing_from_mailers_is_a_configuration_error(registered_transactional, caplog):
    with SMTPServer() as default, smtp(default.port):  # MAILERS has only "default"
        n = TransactionalEmail.trigger(make_user())
        with pytest.raises(ImproperlyConfigured, match="The mailer 'transactional' is not configured"):
            TransactionalEmail(n).send()
        process_all_notifications()
    assert status(n) == S.FAILED
    assert "MailerDoesNotExist" in caplog.text
    assert default.handler.messages == []


@pytest.mark.mailers
def test_project_still_on_email_backend_keeps_sending_and_adds_no_warning():
    # A project not yet migrated to MAILERS: Django warns about its EMAIL_BACKEND setting;
    # sending adds no warning of its own (no get_connection(), no fail_silently).
    with warnings.catch_warnings(record=True) as caught, override_settings():
        warnings.simplefilter("always")
        del settings.MAILERS
        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
        assert caught and all("The EMAIL_BACKEND setting is deprecated" in str(w.message) for w in caught)
        caught.clear()
        n = MyEmailMessage.trigger(make_user())
        MyEmailMessage(n).send()
        assert [str(w.message) for w in caught] == []
    [email] = mail.outbox
    assert email.to == ["ada@example.com"]


@pytest.mark.before_mailers
def test_named_mailer_before_django_61_is_a_configuration_error(registered_transactional):
    n = TransactionalEmail.trigger(make_user())
    with pytest.raises(ImproperlyConfigured, match="Mailer 'transactional': named mailers need Django 6.1"):
        TransactionalEmail(n).send()
    process_all_notifications()
    assert status(n) == S.FAILED
    assert mail.outbox == []


def test_default_alias_is_the_default_mailer_on_every_version():
    @message("default-mailer-email", subject="Hi", body="Hello", mailer="default")
    class DefaultMailerEmail(DefaultEmailMessage):
        pass

    try:
        with SMTPServer() as server, smtp(server.port):
            n = DefaultMailerEmail.trigger(make_user())
            assert process_all_notifications() == 1
    finally:
        registry.unregister("default-mailer-email")
    assert status(n) == S.SUCCESSFULLY_SENT
    [(envelope, received)] = server.handler.messages
    assert envelope.rcpt_tos == ["ada@example.com"] and received["Subject"] == "Hi"


# -- transmissions 0.2's attributes: to, subject, body, create_message() ----------------


def test_without_html_the_email_is_a_plain_email_message():
    n = MyEmailMessage.trigger(make_user())
    process_all_notifications()
    assert status(n) == S.SUCCESSFULLY_SENT
    [email] = mail.outbox
    assert type(email) is mail.EmailMessage and not hasattr(email, "alternatives")
    assert (email.subject, email.body, email.to) == (
        "Hello world!",
        "Hey, let me type a message later",
        ["ada@example.com"],
    )


def test_to_is_the_target_user_and_a_subclass_may_change_it(cleanup):
    cleanup.append("to-someone-else")
    ada, bob = make_user(), make_user("bob")

    @message("to-someone-else", subject="For bob")
    class ToBob(DefaultEmailMessage):
        def __init__(self, notification):
            super().__init__(notification)
            assert self.to == notification.target_user
            self.to = bob

    ToBob.trigger(ada)
    channel = ToBob(Notification.objects.get())
    assert channel.to == bob and channel.create_message().to == ["bob@example.com"]
    channel.to = "ops@example.com"
    assert channel.get_recipient() == "ops@example.com"
    process_all_notifications()
    assert [email.to for email in mail.outbox] == [["bob@example.com"]]


def test_a_subclass_create_message_is_what_is_sent(cleanup):
    cleanup.append("own-create-message")

    @message("own-create-message", subject="Own")
    class OwnEmail(DefaultEmailMessage):
        def __init__(self, notification):
            super().__init__(notification)
            self.subject = self.kwargs.get("subject") + " subject"
            self.body = "own body"

        def create_message(self):
            msg = mail.EmailMultiAlternatives(self.subject, self.body, to=[self.to.email])
            msg.attach_alternative("<p>own</p>", "text/html")
            return msg

    n = OwnEmail.trigger(make_user())
    process_all_notifications()
    assert status(n) == S.SUCCESSFULLY_SENT
    [email] = mail.outbox
    assert (email.subject, email.body, email.alternatives[0][0]) == ("Own subject", "own body", "<p>own</p>")


# -- one SMTP session per batch -------------------------------------------------------------


def test_a_batch_of_emails_goes_through_one_smtp_session(server):
    """A worker keeps the mailer's connection open from one email of a batch to the next, and
    closes it once the batch is done: one session a batch, not one an email."""
    users = [make_user(f"u{i}", email=f"u{i}@example.com") for i in range(5)]
    for user in users:
        MyEmailMessage.trigger(user)
    assert process_all_notifications(batch_size=5) == 5
    assert sorted(e.rcpt_tos[0] for e, _ in server.handler.messages) == [u.email for u in users]
    assert server.handler.sessions == 1
    for user in users:
        MyEmailMessage.trigger(user)
    assert process_all_notifications(batch_size=2) == 5
    assert len(server.handler.messages) == 10
    assert server.handler.sessions == 1 + 3  # batches of 2, 2 and 1


def test_a_refusal_mid_batch_costs_only_its_email_and_the_next_opens_a_new_session(server, caplog):
    users = [make_user(f"u{i}", email=f"u{i}@example.com") for i in range(4)]
    server.handler.refuse = {"u1@example.com": "550 5.1.1 no such user", "u2@example.com": "451 4.3.0 later"}
    sent = [MyEmailMessage.trigger(user) for user in users]
    assert process_all_notifications(batch_size=4) == 4
    assert [status(n) for n in sent] == [S.SUCCESSFULLY_SENT, S.FAILED, S.CREATED, S.SUCCESSFULLY_SENT]
    assert sorted(e.rcpt_tos[0] for e, _ in server.handler.messages) == ["u0@example.com", "u3@example.com"]
    # The first session ended with the refusal, the second with the temporary one.
    assert server.handler.sessions == 3
    assert "no such user" in caplog.text and "later" in caplog.text


def test_a_mailer_that_cannot_connect_fails_each_email_of_the_batch_on_its_own(caplog):
    """No connection at all: every email of the batch tries (and is retried later); none is
    lost, and the batch ends."""
    with smtp(closed_port()):
        sent = [MyEmailMessage.trigger(make_user(f"u{i}", email=f"u{i}@example.com")) for i in range(3)]
        assert process_all_notifications(batch_size=3) == 3
    assert [status(n) for n in sent] == [S.CREATED] * 3
    assert caplog.text.count("ConnectionRefusedError") == 3


@pytest.mark.mailers
def test_each_mailer_keeps_its_own_session_for_the_batch(registered_transactional):
    with (
        SMTPServer() as default,
        SMTPServer() as transactional,
        smtp(default.port, transactional=transactional.port),
    ):
        for i in range(2):
            TransactionalEmail.trigger(make_user(f"a{i}", email=f"a{i}@example.com"))
            MyEmailMessage.trigger(make_user(f"b{i}", email=f"b{i}@example.com"))
        assert process_all_notifications(batch_size=4) == 4
    for server, prefix in ((transactional, "a"), (default, "b")):
        received = sorted(e.rcpt_tos[0] for e, _ in server.handler.messages)
        assert received == [f"{prefix}{i}@example.com" for i in (0, 1)]
    assert default.handler.sessions == transactional.handler.sessions == 1


@override_settings(**email_settings("tests.servers.CloseFailsBackend"))
def test_a_mailer_whose_close_raises_costs_no_email(caplog):
    from tests.servers import CloseFailsBackend

    CloseFailsBackend.closed = 0
    sent = [MyEmailMessage.trigger(make_user(f"u{i}", email=f"u{i}@example.com")) for i in range(3)]
    with caplog.at_level(logging.INFO, logger="transmissions"):
        assert process_all_notifications(batch_size=3) == 3
    assert [status(n) for n in sent] == [S.SUCCESSFULLY_SENT] * 3
    assert len(mail.outbox) == 3 and CloseFailsBackend.closed == 1
    assert "Closing mailer 'default' after a batch raised OSError: the provider hung up first" in caplog.text


class NobodyEmail(MyEmailMessage):
    """Valid, yet its email names no recipient."""

    def check_validity(self):
        return True

    def get_recipient(self):
        return ""


def test_an_email_to_nobody_in_a_batch_opens_no_session_and_fails(server):
    message("nobody-email")(NobodyEmail)
    try:
        n = NobodyEmail.trigger(make_user())
        assert process_all_notifications() == 1
    finally:
        registry.unregister("nobody-email")
    n.refresh_from_db()
    assert n.status == S.FAILED and "the backend sent nothing" in n.reason
    assert server.handler.sessions == 0
