"""Which API is at this URL: the provider catalogue, plus keyturn itself.

keyturn services have no fixed host, so keyturn is not in ``providers.toml``; a user names
it with ``--provider keyturn``, and the doctor recognises its answers on its own.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from keyturn._providers import PROVIDERS, Provider, by_id, for_host

KEYTURN = Provider(
    id="keyturn",
    name="keyturn",
    hosts=(),
    env=("KEYTURN_API_KEY",),
    patterns=(),
    header="Authorization",
    scheme="Bearer",
    also_accepts=("x-api-key",),
    error_message=("detail",),
    error_code=("code",),
)


def provider_ids() -> list[str]:
    return sorted([p.id for p in PROVIDERS] + [KEYTURN.id])


def provider_named(provider_id: str) -> Provider:
    """The provider with this id; ``ValueError`` lists the known ids otherwise."""
    if provider_id == KEYTURN.id:
        return KEYTURN
    found = by_id(provider_id)
    if found is None:
        import difflib

        near = difflib.get_close_matches(provider_id, provider_ids(), n=3)
        hint = f"did you mean {', '.join(near)}? " if near else ""
        raise ValueError(
            f"unknown provider {provider_id!r}; {hint}known: {', '.join(provider_ids())}"
        )
    return found


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def provider_at(url: str | None, named: str | None = None) -> Provider | None:
    """The API to diagnose: the one named, else the one serving the URL's host."""
    if named:
        return provider_named(named)
    if url:
        return for_host(host_of(url))
    return None
