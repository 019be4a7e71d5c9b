"""An SMTP server for the password-recovery test (node/tests/password_recovery.rs).

Usage: smtp_sink.py HOST PORT CERT KEY OUT_DIR USER PASSWORD

Listens on HOST:PORT, requires STARTTLS (with CERT and KEY) and then AUTH as
USER/PASSWORD, and writes each message it accepts to OUT_DIR/NNNN.eml as received and to
OUT_DIR/NNNN.txt decoded (envelope recipients, From, Subject, Message-ID, the
plain-text body), each written whole and then renamed. Stops on SIGTERM.
aiosmtpd is pinned by scripts/install-deps.sh.
"""

import asyncio
import email
import email.policy
import os
import signal
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def main():
    host, port, cert, key, out_dir, user, password = sys.argv[1:8]
    os.makedirs(out_dir, exist_ok=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    count = [len([n for n in os.listdir(out_dir) if n.endswith(".eml")])]

    class Save:
        async def handle_DATA(self, server, session, envelope):
            count[0] += 1
            path = os.path.join(out_dir, f"{count[0]:04}.eml")
            raw = envelope.original_content or envelope.content
            message = email.message_from_bytes(raw, policy=email.policy.default)
            body = message.get_body(preferencelist=("plain",)).get_content()
            text = (
                f"Envelope-To: {','.join(envelope.rcpt_tos)}\n"
                f"From: {message['From']}\nSubject: {message['Subject']}\n"
                f"Message-ID: {message['Message-ID']}\n\n{body}"
            )
            for suffix, data in ((".eml", raw), (".txt", text.encode())):
                with open(path[:-4] + suffix + ".partial", "wb") as f:
                    f.write(data)
                os.rename(path[:-4] + suffix + ".partial", path[:-4] + suffix)
            return "250 Message accepted"

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok)

    controller = Controller(
        Save(),
        hostname=host,
        port=int(port),
        tls_context=context,
        require_starttls=True,
        authenticator=authenticate,
        auth_required=True,
        auth_require_tls=True,
    )
    controller.start()
    print(f"listening on {host}:{port}", flush=True)
    loop = asyncio.new_event_loop()
    signal.signal(signal.SIGTERM, lambda *_: loop.call_soon_threadsafe(loop.stop))
    loop.run_forever()
    controller.stop()


if __name__ == "__main__":
    main()
