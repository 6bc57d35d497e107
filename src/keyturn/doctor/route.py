"""The way to the server: plain HTTP and proxies, both known before any request.

A key sent over ``http://`` to another machine is readable on the wire; a proxy from the
environment sits between the client and the API and may strip ``Authorization``. The doctor
itself connects directly, so it names the proxy that the user's program would go through.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

from keyturn.doctor.report import Finding, finding


def is_loopback(host: str) -> bool:
    host = host.lower().strip("[]").rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
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


def without_password(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``: fit for a report."""
    parts = urlsplit(url if "://" in url else "http://" + url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


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
