"""Sending one message: a Standard Webhooks POST, an email over SMTP, a CRM API call, an http
effect's request (whose answer, read up to MAX_ANSWER_BYTES, comes back to the caller).

requests and smtplib are imported inside the functions that use them. Secrets
(webhook signing keys, the SMTP password, CRM tokens) are environment
variables, looked up by name at send time in the `secrets` the caller passes
(the CLI's settings hold the environment it started with); they are never
stored, and no error message ever contains one. Only variables declared as
secrets are read: a CRM effect's `secret_env`, or the configured list
(CASECTL_SECRET_ENV, `[delivery] secret_env`); never the SMTP password's.

Where a message may go (`TargetPolicy`): http and https only, never a
link-local or cloud metadata address, a private or loopback one only when the
configuration allows it (CASECTL_ALLOW_PRIVATE_TARGETS, `[delivery]
allow_private_targets`). A URL is checked as written (`hooks add`, workflow
lint), again after its host is resolved, and the address each connection
actually reached is checked too, so a DNS answer that changes in between
gains nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import ipaddress
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput

if TYPE_CHECKING:
    import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENV_REF = re.compile(r"\{env\.([A-Za-z_][A-Za-z0-9_]*)\}")
TLS_MODES = ("starttls", "ssl", "none")


class DeliveryError(Exception):
    """A send that did not succeed; the message is safe to store and print.

    `permanent`: the message can never be sent as it is (it cannot be built, or
    its target is refused), so trying again would only burn attempts: it fails now.
    """

    def __init__(self, message: str, *, permanent: bool = False, http_status: int | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.http_status = http_status  # the receiver's answer, when it gave one


# --- configuration ---------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SendSettings:
    """What sending needs from outside the database, read by the caller (the CLI, once per command)."""

    config_path: Path  # $CASECTL_CONFIG, else $XDG_CONFIG_HOME/casectl/config.toml
    smtp_overrides: Mapping[str, str] = field(default_factory=dict)  # CASECTL_SMTP_<KEY>, by lower-case key
    digest_to: str | None = None  # CASECTL_DIGEST_TO
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)  # where secrets are looked up, by name
    allow_private_targets: str | None = None  # CASECTL_ALLOW_PRIVATE_TARGETS, else [delivery] allow_private_targets
    secret_env: str | None = None  # CASECTL_SECRET_ENV (names, comma-separated), with [delivery] secret_env

    def smtp(self) -> SmtpConfig:
        return smtp_config(self.config_path, overrides=self.smtp_overrides, digest_to=self.digest_to)

    def _delivery_table(self) -> dict[str, Any]:
        table = load_config(self.config_path).get("delivery", {})
        return table if isinstance(table, dict) else {}

    def target_policy(self) -> TargetPolicy:
        """Where messages may go: the variable wins over the config file's key."""
        if self.allow_private_targets is not None:
            return TargetPolicy.parse(self.allow_private_targets, "CASECTL_ALLOW_PRIVATE_TARGETS")
        return TargetPolicy.parse(
            self._delivery_table().get("allow_private_targets"),
            f"config file {self.config_path}: [delivery] allow_private_targets",
        )

    def declared_secrets(self) -> frozenset[str]:
        """The variables configured as secrets a header may name as {env.VAR} (besides an effect's own)."""
        names = _names(self.secret_env, "CASECTL_SECRET_ENV")
        return names | _names(
            self._delivery_table().get("secret_env"), f"config file {self.config_path}: [delivery] secret_env"
        )

    def smtp_password_env(self) -> str:
        """The variable holding the SMTP password: never sent anywhere but to the SMTP server."""
        try:
            return self.smtp().password_env
        except InvalidInput:  # a broken config file: the default name is still the password's
            return SmtpConfig.password_env


def _names(raw: Any, what: str) -> frozenset[str]:
    if raw in (None, ""):
        return frozenset()
    items = raw.split(",") if isinstance(raw, str) else raw if isinstance(raw, list) else None
    if items is None or not all(isinstance(n, str) for n in items):
        raise InvalidInput(f"{what}: give variable names (a list, or comma-separated)")
    names = frozenset(n.strip() for n in items if n.strip())
    bad = sorted(n for n in names if not ENV_NAME.match(n))
    if bad:
        raise InvalidInput(f"{what}: '{bad[0]}' is not an environment variable name")
    return names


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

    def origin(key: str) -> str:
        """Where a value came from, for its error: the variable, or the file and key."""
        if given.get(key) not in (None, ""):
            return f"CASECTL_SMTP_{key.upper()}"
        return f"config file {config_path}: [smtp] {key}"

    if "password" in smtp:
        raise InvalidInput(
            f"config file {config_path}: [smtp] password is not allowed there; put the password "
            "in CASECTL_SMTP_PASSWORD (or name another variable with password_env)"
        )
    tls = str(pick("tls") or "none").lower()
    if tls not in TLS_MODES:
        raise InvalidInput(f"{origin('tls')}: '{tls}' is not one of {', '.join(TLS_MODES)}")
    port = pick("port")
    try:
        port = int(port) if port not in (None, "") else None
    except (TypeError, ValueError):
        raise InvalidInput(f"{origin('port')}: '{port}' is not a port number") from None
    password_env = smtp.get("password_env") or "CASECTL_SMTP_PASSWORD"
    if not ENV_NAME.match(str(password_env)):
        raise InvalidInput(
            f"config file {config_path}: [smtp] password_env: '{password_env}' is not an environment variable name"
        )
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


# --- where a message may go --------------------------------------------------------

SCHEMES = ("http", "https")
# Cloud instance metadata: credentials live there. Refused whatever the configuration says.
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog", "metadata.azure.internal"})
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")  # deprecated, but still routed inside some networks
_LEGACY_IPV4 = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$")  # 127.1, 0x7f000001, 2130706433
_ALLOW_ALL = ("1", "true", "yes", "on")
_ALLOW_NONE = ("", "0", "false", "no", "off")
PRIVATE_HINT = "set CASECTL_ALLOW_PRIVATE_TARGETS=1 (or [delivery] allow_private_targets) to allow it"


@dataclass(frozen=True)
class TargetPolicy:
    """Which private or loopback addresses messages may go to: all of them, some networks, or none."""

    allow_private: bool = False
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, raw: Any, what: str) -> TargetPolicy:
        """`1`/`true` (all), `0`/unset (none), or addresses and networks (`10.0.0.0/8, 127.0.0.1`)."""
        if raw is None or raw is False:
            return cls()
        if raw is True:
            return cls(allow_private=True)
        items: list[Any]
        if isinstance(raw, str):
            if raw.strip().lower() in _ALLOW_ALL:
                return cls(allow_private=True)
            if raw.strip().lower() in _ALLOW_NONE:
                return cls()
            items = raw.split(",")
        elif isinstance(raw, list):
            items = raw
        else:
            items = [raw]
        networks = []
        for item in items:
            try:
                networks.append(ipaddress.ip_network(str(item).strip(), strict=False))
            except ValueError:
                raise InvalidInput(
                    f"{what}: '{item}' is not 1, 0, an IP address or a network (10.0.0.0/8); "
                    "e.g. CASECTL_ALLOW_PRIVATE_TARGETS=1"
                ) from None
        return cls(networks=tuple(networks))

    def allows_private(self, ip: IPAddress) -> bool:
        return self.allow_private or any(ip.version == n.version and ip in n for n in self.networks)


def _embedded(ip: IPAddress) -> list[IPAddress]:
    """The address and any IPv4 address it carries (mapped, 6to4, NAT64, IPv4-compatible)."""
    found: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            found.append(ip.ipv4_mapped)
        if ip.sixtofour:
            found.append(ip.sixtofour)
        if ip in _NAT64 or (int(ip) >> 32 == 0 and int(ip) > 1):
            found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def address_problem(ip: IPAddress, policy: TargetPolicy) -> str | None:
    """Why a message may not go to `ip` (None: it may)."""
    candidates = _embedded(ip)
    for a in candidates:
        if a in METADATA_ADDRESSES:
            return "a cloud metadata address"
        if a.is_link_local:
            return "a link-local address"
    a = candidates[-1]  # an IPv4 address carried inside an IPv6 one is where the connection goes
    if a.is_loopback:
        return None if policy.allows_private(a) else f"a loopback address; {PRIVATE_HINT}"
    if a.is_unspecified or a.is_multicast or a.is_reserved or a == ipaddress.IPv4Address("255.255.255.255"):
        return "not an address a message can go to"
    if a.is_private or not a.is_global or (isinstance(a, ipaddress.IPv6Address) and a in _SITE_LOCAL):
        return None if policy.allows_private(a) else f"a private address; {PRIVATE_HINT}"
    return None


def _literal_address(host: str) -> IPAddress | None:
    """The host as an IP address, also in the legacy forms resolvers accept (127.1, 0x7f.1, 2130706433)."""
    import socket

    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if _LEGACY_IPV4.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def target_problem(url: str, policy: TargetPolicy | None, what: str = "URL") -> str | None:
    """Why a message may not go to `url` as written (None: it may, so far; delivery also checks the
    addresses the host resolves to). With no policy (a workflow linted without the configuration)
    private and loopback addresses are not judged."""
    from urllib.parse import urlsplit

    shown = _where(url)
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return f"{what}: '{shown}' is not an http:// or https:// address with a host"
    if "{" in parts.netloc or "}" in parts.netloc or "{" in parts.scheme:
        return f"{what}: '{shown}': a URL's scheme, host and port cannot come from a template (only its path and query)"
    if parts.scheme.lower() not in SCHEMES or not host:
        return f"{what}: '{shown}' is not an http:// or https:// address with a host"
    if parts.username is not None or parts.password is not None:
        return (
            f"{what}: '{shown}' has credentials in it; casectl never sends credentials in a URL: "
            "send them in a header from a declared secret (a crm effect's headers with {env.VAR} and "
            "secret_env), or sign webhooks with --secret-env"
        )
    if host.lower() in METADATA_HOSTS:
        return f"{what}: '{shown}' is a cloud metadata address; messages never go there"
    ip = _literal_address(host.lower())
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        ip = ipaddress.IPv4Address("127.0.0.1")  # RFC 6761: such names are loopback, whatever resolves them
    if ip is None:
        return None
    problem = address_problem(ip, policy or TargetPolicy(allow_private=True))
    return f"{what}: '{shown}' is {problem}" if problem else None


def check_target(url: str, policy: TargetPolicy) -> tuple[str, int]:
    """At delivery: the URL as written, then every address its host resolves to. Returns (host, port)."""
    import socket
    from urllib.parse import urlsplit

    problem = target_problem(url, policy, "target")
    if problem:
        raise DeliveryError(problem, permanent=True)
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise DeliveryError(f"cannot resolve the host {host}") from None
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        problem = address_problem(ip, policy)
        if problem:
            raise DeliveryError(f"target {_where(url)}: {host} resolves to {ip}, {problem}", permanent=True)
    return host, port


def _peer_problem(sock: socket.socket, policy: TargetPolicy) -> str | None:
    peer = sock.getpeername()[0]
    ip = ipaddress.ip_address(str(peer).split("%", 1)[0])
    problem = address_problem(ip, policy)
    return f"the connection reached {ip}, {problem}" if problem else None


def _checked_session(policy: TargetPolicy, refused: list[str]):
    """A requests session whose every connection is checked against `policy` once it is made,
    and that reads no proxy, .netrc or other setting from the environment (a proxy would hide
    where the message really goes)."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    def checked(sock: socket.socket) -> socket.socket:
        problem = _peer_problem(sock, policy)
        if problem:
            sock.close()
            refused.append(problem)
            raise OSError(problem)
        return sock

    class Connection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return checked(super()._new_conn())

    class TLSConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return checked(super()._new_conn())

    class Pool(HTTPConnectionPool):
        ConnectionCls = Connection

    class TLSPool(HTTPSConnectionPool):
        ConnectionCls = TLSConnection

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": TLSPool}

    session = requests.Session()
    session.trust_env = False
    session.mount("http://", Adapter())
    session.mount("https://", Adapter())
    return session


# --- what one delivery run checks each HTTP message against ---------------------------


@dataclass(frozen=True, kw_only=True)
class Outbound:
    """Where messages may go and which secrets they may carry, built once per delivery run."""

    policy: TargetPolicy
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)  # the environment, looked up by name
    declared: frozenset[str] = frozenset()  # configured secret names a header may use
    never: frozenset[str] = frozenset()  # the SMTP password's variable: it goes to the SMTP server only

    @classmethod
    def from_settings(cls, settings: SendSettings) -> Outbound:
        return cls(
            policy=settings.target_policy(),
            secrets=settings.secrets,
            declared=settings.declared_secrets(),
            never=frozenset({settings.smtp_password_env(), SmtpConfig.password_env}),
        )

    def secret(self, var: str, what: str, *, declared_here: Iterable[str | None] = ()) -> str:
        """The value of a variable a message may use as a secret."""
        if var in self.never:
            raise DeliveryError(f"{what}: {var} holds the SMTP password; it is never sent to a URL", permanent=True)
        if var not in self.declared and var not in set(declared_here):
            raise DeliveryError(
                f"{what}: {{env.{var}}} is not a declared secret; name it in the effect's secret_env "
                "or list it in CASECTL_SECRET_ENV (or [delivery] secret_env)",
                permanent=True,
            )
        return _secret(self.secrets, var, what)


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


_BAD_HEADER = re.compile(r"[\r\n\x00]")


MAX_ANSWER_BYTES = 1024 * 1024  # an http effect's answer; a bigger one is refused, never read whole
# Answers to a request that may succeed later as it is: the rest of 4xx will not (http effects).
_RETRYABLE_4XX = frozenset({408, 425, 429})


@dataclass(frozen=True)
class Answer:
    """What a receiver answered: its status and (when asked for) its body, at most MAX_ANSWER_BYTES."""

    status: int
    body: bytes = b""


def _http(
    method: str,
    url: str,
    *,
    data: bytes,
    headers: dict[str, str],
    timeout: float,
    out: Outbound,
    read_answer: bool = False,
) -> Answer:
    """Send one request; raise DeliveryError unless it was answered 2xx. With `read_answer` the
    body comes back too (an http effect maps it), and a 4xx other than 408, 425 or 429 is a
    permanent failure: the same request would get the same answer."""
    import requests

    for name, value in headers.items():
        if _BAD_HEADER.search(name) or _BAD_HEADER.search(value):
            raise DeliveryError(f"header {name.strip()[:40]!r} has a line break; a header is one line", permanent=True)
    check_target(url, out.policy)
    refused: list[str] = []
    started = time.monotonic()
    try:
        with _checked_session(out.policy, refused) as session:
            # Streamed, so that nothing but the status is read unless the body is wanted.
            response = session.request(
                method,
                url,
                data=data,
                headers=headers,
                timeout=(min(timeout, 5.0), timeout),
                allow_redirects=False,
                stream=True,
            )
            try:
                status = response.status_code
                body = _bounded_body(response, url, started + timeout) if read_answer and 200 <= status < 300 else b""
            finally:
                response.close()
    except requests.Timeout:
        raise DeliveryError(f"{_where(url)} did not answer within {timeout:g}s") from None
    except requests.ConnectionError:
        if refused:
            raise DeliveryError(f"target {_where(url)}: {refused[0]}", permanent=True) from None
        raise DeliveryError(f"cannot connect to {_where(url)}") from None
    except (requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader, requests.exceptions.InvalidSchema) as e:
        raise DeliveryError(f"cannot send to {_where(url)} ({type(e).__name__})", permanent=True) from None
    except requests.RequestException as e:
        raise DeliveryError(f"request to {_where(url)} failed ({type(e).__name__})") from None
    if not 200 <= status < 300:
        final = read_answer and 400 <= status < 500 and status not in _RETRYABLE_4XX
        raise DeliveryError(f"{_where(url)} answered HTTP {status}", permanent=final, http_status=status)
    return Answer(status, body)


def _bounded_body(response: Any, url: str, deadline: float) -> bytes:
    """The body, refused (permanently) past MAX_ANSWER_BYTES and cut off past `deadline`:
    a receiver that drips its answer must not hold the message past its claim."""
    import requests

    limit = MAX_ANSWER_BYTES
    too_big = DeliveryError(
        f"{_where(url)} answered with more than {limit // 1024} KiB; an http effect reads at most that",
        permanent=True,
        http_status=response.status_code,
    )
    declared = response.headers.get("content-length")
    if declared and declared.strip().isdigit() and int(declared) > limit:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise too_big
            if time.monotonic() > deadline:
                raise DeliveryError(
                    f"{_where(url)} did not finish its answer in time", http_status=response.status_code
                )
            chunks.append(chunk)
    except requests.RequestException as e:
        raise DeliveryError(
            f"{_where(url)} broke off its answer ({type(e).__name__})", http_status=response.status_code
        ) from None
    return b"".join(chunks)


def _where(url: str) -> str:
    """A URL without credentials or query string (either may hold a token), on one line."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "the receiver"
    return " ".join(f"{parts.scheme}://{host}{port}{parts.path}".split())[:300]


def send_webhook(url: str, payload: dict[str, Any], msg_id: str, *, timeout: float, out: Outbound) -> None:
    body, headers = webhook_request(url, payload, msg_id, secrets=out.secrets)
    _http("POST", url, data=body, headers=headers, timeout=timeout, out=out)


# --- CRM API calls -----------------------------------------------------------------


def header_parts(template: str) -> list[str | dict[str, str]]:
    """A header template split into text and secret references: `Bearer {env.CRM_TOKEN}` ->
    ["Bearer ", {"env": "CRM_TOKEN"}]. The text parts are rendered from the case when the
    message is queued; a case's data can therefore never name a secret."""
    parts: list[str | dict[str, str]] = []
    at = 0
    for m in _ENV_REF.finditer(template):
        if m.start() > at:
            parts.append(template[at : m.start()])
        parts.append({"env": m.group(1)})
        at = m.end()
    if at < len(template):
        parts.append(template[at:])
    return parts


def _header_value(value: Any, out: Outbound, what: str, declared_here: str | None) -> str:
    if isinstance(value, list):  # [text | {"env": VAR}, ...] (see header_parts)
        return "".join(
            out.secret(str(p["env"]), what, declared_here=[declared_here]) if isinstance(p, dict) else str(p)
            for p in value
        )
    # A message queued before header_parts: its references are resolved the same checked way.
    return _ENV_REF.sub(lambda m: out.secret(m.group(1), what, declared_here=[declared_here]), str(value))


def _api_request(payload: dict[str, Any], msg_id: str, out: Outbound) -> tuple[str, bytes, dict[str, str]]:
    """(method, body bytes, headers) of a CRM call or an http effect's request."""
    method = str(payload.get("method") or "POST").upper()
    headers = {"user-agent": "casectl", "idempotency-key": msg_id}
    var = payload.get("secret_env")
    for name, value in (payload.get("headers") or {}).items():
        headers[str(name)] = _header_value(value, out, f"header {name}", var)
    if var and not any(k.lower() == "authorization" for k in headers):
        headers["authorization"] = f"Bearer {out.secret(var, 'the CRM token', declared_here=[var])}"
    body = payload.get("body")
    if body is None or method == "GET":
        data = b""
    elif isinstance(body, str):
        data = body.encode()
        headers.setdefault("content-type", "text/plain; charset=utf-8")
    else:
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers.setdefault("content-type", "application/json")
    return method, data, headers


def send_crm(url: str, payload: dict[str, Any], msg_id: str, *, timeout: float, out: Outbound) -> None:
    """method, headers (values may name declared secrets as {env.VAR}), JSON or text body."""
    method, data, headers = _api_request(payload, msg_id, out)
    _http(method, url, data=data, headers=headers, timeout=timeout, out=out)


def send_http(url: str, payload: dict[str, Any], msg_id: str, *, timeout: float, out: Outbound) -> Answer:
    """An http effect's request, built as a CRM call's is; its answer comes back (see _http)."""
    method, data, headers = _api_request(payload, msg_id, out)
    if not any(k.lower() == "accept" for k in headers):
        headers["accept"] = "application/json"
    return _http(method, url, data=data, headers=headers, timeout=timeout, out=out, read_answer=True)


# --- email ---------------------------------------------------------------------------


def text_to_html(text: str) -> str:
    return '<html><body><pre style="font-family: sans-serif">' + html.escape(text) + "</pre></body></html>"


def build_email(cfg: SmtpConfig, to: list[str], subject: str, text: str, html_part: str | None, msg_id: str):
    """The message, or DeliveryError(permanent) when it cannot be built (a line break in a header)."""
    from email.errors import MessageError
    from email.message import EmailMessage
    from email.utils import formatdate

    sender = cfg.sender or "casectl@localhost"
    for name, value in (("subject", subject), ("recipient", ", ".join(to)), ("sender", sender), ("id", msg_id)):
        if _BAD_HEADER.search(value):
            raise DeliveryError(f"the email's {name} has a line break; a header is one line", permanent=True)
    try:
        msg = EmailMessage()
        msg["From"] = sender
        msg["To"] = ", ".join(to)
        msg["Subject"] = subject
        msg["Date"] = formatdate(localtime=False)
        domain = sender.rpartition("@")[2].strip("> ") or "localhost"
        # Resending the same message keeps its Message-ID, so mail systems can drop the duplicate.
        msg["Message-ID"] = f"<{msg_id}@{domain}>"
        msg["X-Casectl-Id"] = msg_id
        msg.set_content(text)
        msg.add_alternative(html_part or text_to_html(text), subtype="html")
    except (ValueError, TypeError, MessageError) as e:
        raise DeliveryError(f"cannot build the email ({type(e).__name__}: {_short(e)})", permanent=True) from None
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
    except smtplib.SMTPServerDisconnected as e:
        if isinstance(e.__context__, TimeoutError):  # smtplib reports a silent server as a disconnection
            raise DeliveryError(
                f"SMTP server {cfg.host}:{cfg.effective_port} did not answer within {timeout:g}s"
            ) from None
        raise DeliveryError(f"SMTP server {cfg.host}:{cfg.effective_port} closed the connection") from None
    except ValueError as e:  # e.g. an address the server cannot take as written
        raise DeliveryError(f"cannot send the email ({type(e).__name__}: {_short(e)})", permanent=True) from None
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
