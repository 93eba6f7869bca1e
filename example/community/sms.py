"""An SMS backend for the example: one line per SMS appended to ``settings.SMS_FILE_PATH``."""

import re

from django.conf import settings

from transmissions.exceptions import ChannelSendException

# What a provider would accept: E.164, a "+" and 8 to 15 digits.
E164 = re.compile(r"^\+[1-9]\d{7,14}$")


class FileSMSBackend:
    def send_messages(self, messages):
        for sms in messages:
            if not E164.match(sms.to):
                # As a real provider does: a malformed number is a permanent failure.
                raise ChannelSendException(f"{sms.to!r} is not a valid phone number")
        with open(settings.SMS_FILE_PATH, "a", encoding="utf-8") as log:
            for sms in messages:
                log.write(f"to={sms.to} from={sms.sender or '-'}: {sms.body}\n")
        return len(messages)
