"""Sending one message: a Standard Webhooks POST, an email over SMTP, a CRM API call.

requests and smtplib are imported inside the functions that use them. Secrets
(webhook signing keys, the SMTP password, CRM tokens) are environment
variables, looked up by name at send time in the `secrets` the caller passes
(the CLI's settings hold the environment it started with); they are never
stored, and no error message ever contains one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidInput

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENV_REF = re.compile(r"\{env\.([A-Za-z_][A-Za-z0-9_]*)\}")
TLS_MODES = ("starttls", "ssl", "none")


class DeliveryError(Exception):
    """A send that did not succeed; the message is safe to store and print."""


# --- configuration ---------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SendSettings:
    """What sending needs from outside the database, read by the caller (the CLI, once per command)."""

    config_path: Path  # $CASECTL_CONFIG, else $XDG_CONFIG_HOME/casectl/config.toml
    smtp_overrides: Mapping[str, str] = field(default_factory=dict)  # CASECTL_SMTP_<KEY>, by lower-case key
    digest_to: str | None = None  # CASECTL_DIGEST_TO
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)  # where secrets are looked up, by name

    def smtp(self) -> SmtpConfig:
        return smtp_config(self.config_path, overrides=self.smtp_overrides, digest_to=self.digest_to)


def load_config(path: Path) -> dict[str, Any]:
    """The config file, or {} when there is none."""
    import tomllib

    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise InvalidInput(f"config file {path}: {e}; fix it or point CASECTL_CONFIG elsewhere") from None


@dataclass
class SmtpConfig:
    host: str | None = None
    port: int | None = None
    sender: str | None = None
    user: str | None = None
    password_env: str = "CASECTL_SMTP_PASSWORD"  # the password itself is only ever in the environment
    tls: str = "none"
    digest_to: list[str] = field(default_factory=list)

    @property
    def effective_port(self) -> int:
        return self.port or {"ssl": 465, "starttls": 587}.get(self.tls, 25)


def smtp_config(
    config_path: Path, *, overrides: Mapping[str, str] | None = None, digest_to: str | None = None
) -> SmtpConfig:
    """`overrides` (the CASECTL_SMTP_* variables, by lower-case key), else the [smtp] table of the config file."""
    doc = load_config(config_path)
    smtp = doc.get("smtp", {}) if isinstance(doc.get("smtp"), dict) else {}
    digest = doc.get("digest", {}) if isinstance(doc.get("digest"), dict) else {}
    given = overrides or {}

    def pick(key: str) -> Any:
        value = given.get(key)
        return value if value not in (None, "") else smtp.get(key)

    if "password" in smtp:
        raise InvalidInput(
            f"config file {config_path}: [smtp] password is not allowed there; put the password "
            "in CASECTL_SMTP_PASSWORD (or name another variable with password_env)"
        )
    tls = str(pick("tls") or "none").lower()
    if tls not in TLS_MODES:
        raise InvalidInput(f"CASECTL_SMTP_TLS: '{tls}' is not one of {', '.join(TLS_MODES)}")
    port = pick("port")
    try:
        port = int(port) if port not in (None, "") else None
    except (TypeError, ValueError):
        raise InvalidInput(f"CASECTL_SMTP_PORT: '{port}' is not a port number") from None
    password_env = smtp.get("password_env") or "CASECTL_SMTP_PASSWORD"
    if not ENV_NAME.match(str(password_env)):
        raise InvalidInput(f"config [smtp] password_env: '{password_env}' is not an environment variable name")
    to = digest_to or digest.get("to") or []
    if isinstance(to, str):
        to = [a.strip() for a in to.split(",") if a.strip()]
    return SmtpConfig(
        host=pick("host"),
        port=port,
        sender=pick("from"),
        user=pick("user"),
        password_env=str(password_env),
        tls=tls,
        digest_to=list(to),
    )


# --- webhooks (Standard Webhooks) --------------------------------------------------


def signing_key(secret: str) -> bytes:
    """A `whsec_<base64>` secret (the prefix is optional) -> the HMAC key."""
    raw = secret.strip()
    if raw.startswith("whsec_"):
        raw = raw[len("whsec_") :]
    try:
        return base64.b64decode(raw, validate=True)
    except (ValueError, TypeError):
        raise DeliveryError("the webhook secret is not in whsec_<base64> form") from None


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def _secret(secrets: Mapping[str, str], var: str, what: str) -> str:
    value = secrets.get(var)
    if not value:
        raise DeliveryError(f"environment variable {var} ({what}) is not set")
    return value


def webhook_request(
    url: str, payload: dict[str, Any], msg_id: str, *, secrets: Mapping[str, str], timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The exact bytes and headers a webhook is sent with."""
    body = json.dumps(payload.get("body", {}), ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
    ts = int(time.time()) if timestamp is None else timestamp  # the receiver checks it against its own clock
    headers = {
        "content-type": "application/json",
        "user-agent": "casectl-webhooks",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
    }
    var = payload.get("secret_env")
    if var:
        headers["webhook-signature"] = sign(signing_key(_secret(secrets, var, "the webhook secret")), msg_id, ts, body)
    return body, headers


def _http(method: str, url: str, *, data: bytes, headers: dict[str, str], timeout: float) -> None:
    import requests

    try:
        response = requests.request(
            method, url, data=data, headers=headers, timeout=(min(timeout, 5.0), timeout), allow_redirects=False
        )
    except requests.Timeout:
        raise DeliveryError(f"{_where(url)} did not answer within {timeout:g}s") from None
    except requests.ConnectionError:
        raise DeliveryError(f"cannot connect to {_where(url)}") from None
    except requests.RequestException as e:
        raise DeliveryError(f"request to {_where(url)} failed ({type(e).__name__})") from None
    status = response.status_code
    response.close()
    if not 200 <= status < 300:
        raise DeliveryError(f"{_where(url)} answered HTTP {status}")


def _where(url: str) -> str:
    """A URL without credentials or query string (either may hold a token)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "the receiver"
    return f"{parts.scheme}://{host}{port}{parts.path}"


def send_webhook(url: str, payload: dict[str, Any], msg_id: str, *, timeout: float, secrets: Mapping[str, str]) -> None:
    body, headers = webhook_request(url, payload, msg_id, secrets=secrets)
    _http("POST", url, data=body, headers=headers, timeout=timeout)


# --- CRM API calls -----------------------------------------------------------------


def send_crm(url: str, payload: dict[str, Any], msg_id: str, *, timeout: float, secrets: Mapping[str, str]) -> None:
    """method, headers (values may name secrets as {env.VAR}), JSON or text body."""
    method = str(payload.get("method") or "POST").upper()
    headers = {"user-agent": "casectl", "idempotency-key": msg_id}
    for name, value in (payload.get("headers") or {}).items():
        headers[str(name)] = _fill_secrets(str(value), secrets, f"header {name}")
    var = payload.get("secret_env")
    if var and not any(k.lower() == "authorization" for k in headers):
        headers["authorization"] = f"Bearer {_secret(secrets, var, 'the CRM token')}"
    body = payload.get("body")
    if body is None or method == "GET":
        data = b""
    elif isinstance(body, str):
        data = body.encode()
        headers.setdefault("content-type", "text/plain; charset=utf-8")
    else:
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers.setdefault("content-type", "application/json")
    _http(method, url, data=data, headers=headers, timeout=timeout)


def _fill_secrets(value: str, secrets: Mapping[str, str], what: str) -> str:
    """`Bearer {env.CRM_TOKEN}` -> the value with each named secret in place."""
    return _ENV_REF.sub(lambda m: _secret(secrets, m.group(1), what), value)


# --- email ---------------------------------------------------------------------------


def text_to_html(text: str) -> str:
    return '<html><body><pre style="font-family: sans-serif">' + html.escape(text) + "</pre></body></html>"


def build_email(cfg: SmtpConfig, to: list[str], subject: str, text: str, html_part: str | None, msg_id: str):
    from email.message import EmailMessage
    from email.utils import formatdate

    msg = EmailMessage()
    msg["From"] = cfg.sender or "casectl@localhost"
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    domain = (cfg.sender or "casectl@localhost").rpartition("@")[2].strip("> ") or "localhost"
    # Resending the same message keeps its Message-ID, so mail systems can drop the duplicate.
    msg["Message-ID"] = f"<{msg_id}@{domain}>"
    msg["X-Casectl-Id"] = msg_id
    msg.set_content(text)
    msg.add_alternative(html_part or text_to_html(text), subtype="html")
    return msg


def send_email(
    cfg: SmtpConfig,
    to: list[str],
    subject: str,
    text: str,
    html_part: str | None,
    msg_id: str,
    *,
    timeout: float,
    secrets: Mapping[str, str],
) -> None:
    import smtplib
    import ssl

    if not cfg.host:
        raise DeliveryError("no SMTP server configured: set CASECTL_SMTP_HOST (or [smtp] host in the config file)")
    if not to:
        raise DeliveryError("no recipient")
    msg = build_email(cfg, to, subject, text, html_part, msg_id)
    try:
        client: smtplib.SMTP
        if cfg.tls == "ssl":
            client = smtplib.SMTP_SSL(
                cfg.host, cfg.effective_port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(cfg.host, cfg.effective_port, timeout=timeout)
        with client:
            if cfg.tls == "starttls":
                client.starttls(context=ssl.create_default_context())
            if cfg.user:
                client.login(cfg.user, _secret(secrets, cfg.password_env, "the SMTP password"))
            refused = client.send_message(msg)
    except DeliveryError:
        raise
    except smtplib.SMTPAuthenticationError as e:
        raise DeliveryError(f"SMTP login as {cfg.user} refused ({e.smtp_code})") from None
    except smtplib.SMTPRecipientsRefused as e:
        raise DeliveryError(f"SMTP server refused every recipient: {', '.join(e.recipients)}") from None
    except smtplib.SMTPResponseException as e:
        raise DeliveryError(f"SMTP server answered {e.smtp_code}: {_short(e.smtp_error)}") from None
    except TimeoutError:
        raise DeliveryError(f"SMTP server {cfg.host}:{cfg.effective_port} did not answer within {timeout:g}s") from None
    except (OSError, smtplib.SMTPException) as e:
        raise DeliveryError(
            f"cannot send through SMTP server {cfg.host}:{cfg.effective_port} "
            f"({type(e).__name__}{': ' + _short(str(e)) if str(e) else ''})"
        ) from None
    if refused:
        raise DeliveryError(f"SMTP server refused: {', '.join(refused)}")


def _short(value: Any) -> str:
    text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return " ".join(text.split())[:200]
