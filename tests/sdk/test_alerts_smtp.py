"""Email alerts the seed's way: `SMTP_PORT` unset means 587, where the mail server (aiosmtpd, in this process,
with a self-signed certificate) refuses to take mail before STARTTLS. `SMTP_OPENSSL_VERIFY_MODE=none` accepts
that certificate; the default verifies it, so the same server gets nothing."""

import contextlib
import datetime
import ipaddress
import ssl
import time
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness import start_splat, until
from test_alerts_chat import TITLE, log_tail, send

SUBMISSION_PORT = 587


def self_signed(directory):
    """A certificate for 127.0.0.1 signed by its own key, as a local relay's would be."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "splat-test-smtp")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp.crt", directory / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append({"tls": session.ssl is not None, "message": message_from_bytes(envelope.content)})
        return "250 Message accepted for delivery"


@contextlib.contextmanager
def submission_server(directory):
    """aiosmtpd on 127.0.0.1:587 offering STARTTLS and refusing mail without it."""
    cert, key = self_signed(directory)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    mailbox = Mailbox()
    controller = Controller(
        mailbox, hostname="127.0.0.1", port=SUBMISSION_PORT, tls_context=context, require_starttls=True
    )
    try:
        controller.start()
    except OSError as e:
        pytest.fail(f"port {SUBMISSION_PORT} is taken on 127.0.0.1: {e}")
    try:
        yield mailbox
    finally:
        controller.stop()


ENV = {"SMTP_ADDRESS": "127.0.0.1", "SPLAT_ADMIN_EMAILS": "ops@example.com"}


def test_mail_goes_over_starttls_on_587_with_verify_mode_none(tmp_path):
    with submission_server(tmp_path) as mailbox:
        with start_splat(tmp_path, {**ENV, "SMTP_OPENSSL_VERIFY_MODE": "none"}) as splat:
            send(splat)
            [mail] = until(lambda: mailbox.messages[:], "the email", context=lambda: log_tail(splat))
            assert mail["tls"], "the message came after STARTTLS"
            assert mail["message"]["Subject"] == f"[Splat] New Issue: {TITLE}"
            body = mail["message"].get_payload(decode=True).decode()
            assert "Environment: production" in body and "Release: shop@1.4.2" in body


def test_a_self_signed_certificate_is_refused_by_default(tmp_path):
    with submission_server(tmp_path) as mailbox:
        with start_splat(tmp_path, ENV) as splat:
            send(splat)
            until(lambda: "giving up" in splat.log_path.read_text(), "the last try", context=lambda: log_tail(splat))
            time.sleep(0.2)
            assert mailbox.messages == []
            assert "certificate" in splat.log_path.read_text().lower()
