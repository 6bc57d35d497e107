"""The way to the server: plain HTTP and proxies, both known before any request.

A key sent over ``http://`` to another machine is readable on the wire; a proxy from the
environment sits between the client and the API and may strip ``Authorization``. The doctor
itself connects directly, so it names the proxy that the user's program would go through.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit, urlunsplit

from keyturn.doctor.report import Finding, finding


def is_loopback_name(host: str) -> bool:
    """``localhost`` and ``*.localhost``: loopback by definition (RFC 6761 §6.3), so the
    probe connects to the loopback interface without asking a resolver where they are."""
    host = host.lower().rstrip(".")
    return host == "localhost" or host.endswith(".localhost")


def is_loopback(host: str) -> bool:
    if is_loopback_name(host):
        return True
    host = host.lower().strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def insecure(url: str) -> bool:
    """Whether a key sent to ``url`` would cross the network in clear text."""
    parts = urlsplit(url)
    return parts.scheme == "http" and not is_loopback(parts.hostname or "")


def _env(environ: Mapping[str, str], name: str) -> str:
    return environ.get(name.lower()) or environ.get(name.upper()) or ""


def _bypassed(host: str, no_proxy: str) -> bool:
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        entry = entry.lstrip(".").split(":")[0]
        if host == entry or host.endswith("." + entry):
            return True
    return False


_USERINFO = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.-]*:)?//)[^/?#]*@")


def without_password(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``: fit for a report. Works on
    any text (a server's broken ``Location`` too), never raises."""
    return _USERINFO.sub(r"\1***@", url)


def userinfo(url: str) -> tuple[str, str | None] | None:
    """(user, password) written into ``url`` before its host, percent-decoded; an empty
    password (``key:@``, as curl -u writes it) is none."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return None
    user, _, password = parts.netloc.rpartition("@")[0].partition(":")
    return unquote(user), unquote(password) or None


def proxy_for(url: str, environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(variable, proxy) that an HTTP client would use for ``url``, if any."""
    env = os.environ if environ is None else environ
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if _bypassed(host, _env(env, "no_proxy")):
        return None
    for name in (f"{parts.scheme}_proxy", "all_proxy"):
        value = _env(env, name)
        if value:
            return name.upper(), value
    return None


def check_route(url: str, environ: Mapping[str, str] | None = None) -> list[Finding]:
    found = []
    parts = urlsplit(url)
    if insecure(url):
        found.append(
            finding(
                "insecure_transport",
                f"{parts.hostname} is reached over plain http://, so the key would cross the "
                "network unencrypted",
                f"use {urlunsplit(parts._replace(scheme='https'))}",
            )
        )
    proxy = proxy_for(url, environ)
    if proxy is not None:
        name, value = proxy
        found.append(
            finding(
                "proxy_in_env",
                f"{name}={without_password(value)} applies to {parts.hostname}, so most "
                "clients (requests, httpx, curl) send this request through that proxy; the "
                "doctor connects directly",
            )
        )
    return found
