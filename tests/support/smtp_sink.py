#!/usr/bin/env python3
"""A real SMTP server on loopback for the report tests (aiosmtpd, Debian's python3-aiosmtpd).

    smtp_sink.py OUT_DIR [--user NAME --password PW] [--starttls | --tls] [--cert PEM --key PEM]

Prints `port N` once listening on 127.0.0.1. Every message it accepts is read the way a mail
client reads it (Python's `email` package, default policy) and written to OUT_DIR as
`N.json`: envelope, decoded headers, the MIME tree, and each leaf part's details; each
attachment's bytes are written beside it as `N-<filename>`. Runs until killed.
"""
import argparse
import asyncio
import email
import email.policy
import json
import os
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def tree(part):
    if part.is_multipart():
        return {"type": part.get_content_type(), "parts": [tree(p) for p in part.iter_parts()]}
    return {"type": part.get_content_type()}


class Sink:
    def __init__(self, out):
        self.out = out
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        n = self.count
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        leaves = []
        for part in msg.walk():
            if part.is_multipart():
                continue
            name = part.get_filename()
            saved_as = name or (part.get("Content-ID") or "").strip("<>") or None
            payload = part.get_payload(decode=True) or b""
            leaf = {
                "type": part.get_content_type(),
                "disposition": part.get_content_disposition(),
                "filename": name,
                "content_id": part.get("Content-ID"),
                "size": len(payload),
            }
            if part.get_content_maintype() == "text" and not name:
                leaf["text"] = part.get_content()
            if saved_as:
                path = os.path.join(self.out, f"{n}-{os.path.basename(saved_as)}")
                with open(path, "wb") as f:
                    f.write(payload)
                leaf["saved"] = path
            leaves.append(leaf)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "authenticated": getattr(session, "authenticated", False),
            "subject": str(msg["Subject"]),
            "from": str(msg["From"]),
            "to": str(msg["To"]),
            "tree": tree(msg),
            "leaves": leaves,
        }
        tmp = os.path.join(self.out, f"{n}.json.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f, ensure_ascii=False)
        os.rename(tmp, os.path.join(self.out, f"{n}.json"))
        return "250 OK"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--starttls", action="store_true", help="require STARTTLS (port 587 style)")
    ap.add_argument("--tls", action="store_true", help="TLS from the first byte (port 465 style)")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    args = ap.parse_args()
    kwargs = {}
    context = None
    if args.starttls or args.tls:
        import ssl
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
    if args.user:
        def authenticate(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == args.user \
                and auth_data.password.decode() == args.password
            return AuthResult(success=ok)
        kwargs = {"authenticator": authenticate, "auth_required": True, "auth_require_tls": args.starttls}  # implicit TLS is not seen by aiosmtpd 1.4 as TLS
    if args.starttls:
        kwargs.update(tls_context=context, require_starttls=True)
    elif args.tls:
        kwargs.update(ssl_context=context)
    # aiosmtpd 1.4 cannot listen on port 0 (its start-up check connects to the given port).
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Sink(args.out), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    print(f"port {port}", flush=True)
    try:
        asyncio.new_event_loop().run_until_complete(asyncio.Event().wait())
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
