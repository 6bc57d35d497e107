"""The JSON shapes of the admin and verify API, as pydantic models.

They are the API's contract twice over: FastAPI validates requests with them (a bad field
becomes a 422 naming it) and renders them into the OpenAPI document that clients and the
schemathesis run read. Request models forbid unknown fields, so ``"scope"`` for ``"scopes"``
is an error instead of a key created without scopes.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
)
from typing_extensions import TypeAliasType  # pydantic's own dependency: 3.11 lacks it

from keyturn import admin
from keyturn._addresses import ADDRESS_PATTERN, MAX_NETWORKS, NETWORK_PATTERN
from keyturn._states import Status
from keyturn.admin import UNSET, KeyChange, NewKey
from keyturn.errors import InvalidValue
from keyturn.permissions import MAX_LENGTH as MAX_PERMISSIONS_LENGTH
from keyturn.scopes import ROLE_NAME, SCOPE_TOKEN

# The limits below are the admin layer's (``keyturn.admin``), declared here so that the
# OpenAPI document states them; the admin layer checks them for every face.
Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=admin.MAX_TEXT_LENGTH, pattern=admin.TEXT_PATTERN),
]
Owner = Name
Scope = Annotated[
    str,
    StringConstraints(pattern=f"^{SCOPE_TOKEN.pattern}$"),
    Field(description="A permission, printable ASCII without spaces: `orders:read`; `*` is root."),
]
Scopes = Annotated[list[Scope], Field(max_length=admin.MAX_SCOPES)]
RoleName = Annotated[
    str,
    StringConstraints(pattern=f"^{ROLE_NAME.pattern}$"),
    Field(description="A role's name: letters, digits and `. _ : -`, like `billing-admin`."),
]
Roles = Annotated[
    list[RoleName],
    Field(
        max_length=admin.MAX_ROLES,
        description="Roles (`/v1/roles`) whose scopes the key holds besides its own; each "
        "must be defined (`unknown_role` otherwise).",
    ),
]
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
MAX_LIFETIME_SECONDS = int(admin.MAX_LIFETIME.total_seconds())
MAX_GRACE_SECONDS = int(admin.MAX_GRACE.total_seconds())


def _rfc3339(value: Any) -> Any:
    """Only a date-time string, as the schema says: pydantic would also take ``0.5`` or
    ``"1700000000"`` as Unix times, which no client means by an expiry."""
    if isinstance(value, str) and _RFC3339.match(value):
        return value
    if isinstance(value, datetime):
        return value
    raise ValueError("expected an RFC 3339 date-time with a UTC offset, e.g. 2030-01-31T12:00:00Z")


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]
_STORED_YEARS = "^(19[7-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-"
# A time keyturn stores: the schema states the years it can hold (``admin.checked_time``
# holds the exact bounds, in UTC).
StoredTime = Annotated[
    Timestamp, Field(json_schema_extra={"pattern": _STORED_YEARS})
]
# JSON as metadata may hold it: text without NUL (no engine stores one), said in the
# schema so that clients (and schemathesis) know it.
_JsonText = Annotated[str, StringConstraints(pattern="^[^\\x00]*$")]
JsonData = TypeAliasType(
    "JsonData",
    "dict[_JsonText, JsonData] | list[JsonData] | _JsonText | int | float | bool | None",
)
def _metadata(value: Any) -> Any:
    """The admin layer's check first (NUL, size, depth), so that its message, about
    ``metadata`` as a whole, is the answer rather than one per nested branch of the type."""
    if isinstance(value, dict):
        admin.checked_metadata(value)
    return value


Metadata = Annotated[
    dict[_JsonText, JsonData],
    BeforeValidator(_metadata),
    Field(
        description=f"Free-form JSON object, at most {admin.MAX_METADATA_BYTES} bytes, nesting "
        f"at most {admin.MAX_METADATA_DEPTH} levels, no NUL characters."
    ),
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# What the limits parser reads, and no more: every string the schema allows is a limit.
_RATE_LIMIT = r"^[1-9][0-9]{0,9}/([1-9][0-9]{0,2} )?(second|minute|hour|day|month|year)s?$"
RateLimits = Annotated[
    list[Annotated[str, StringConstraints(pattern=_RATE_LIMIT)]],
    Field(
        max_length=admin.MAX_RATE_LIMITS,
        description="Rate limits like `100/second` or `10000/day`, counted per key across "
        "every instance sharing the server's Redis.",
    ),
]


def _matching(pattern: str, what: str) -> Any:
    """A string matching ``pattern`` (stated in the schema), else a sentence saying what is
    expected instead of pydantic's, which would quote the whole expression."""
    match = re.compile(pattern).fullmatch

    def check(value: str) -> str:
        if not match(value):
            raise ValueError(f"expected {what}")
        return value

    return AfterValidator(check)


Address = Annotated[
    str,
    StringConstraints(max_length=64),
    Field(json_schema_extra={"pattern": ADDRESS_PATTERN}),
    _matching(ADDRESS_PATTERN, "an IP address such as 203.0.113.7 or 2001:db8::1"),
]
AllowedIp = Annotated[
    str,
    StringConstraints(max_length=64),
    Field(json_schema_extra={"pattern": NETWORK_PATTERN}),
    _matching(NETWORK_PATTERN, "an IP address or a CIDR block such as 10.0.0.0/8"),
]
AllowedIps = Annotated[
    list[AllowedIp],
    Field(
        max_length=MAX_NETWORKS,
        description="Client addresses and CIDR blocks the key may be used from, IPv4 or IPv6 "
        "(`203.0.113.7`, `10.0.0.0/8`, `2001:db8::/32`); empty: anywhere. The client is the "
        "connection's peer, or the address a trusted proxy names (`trusted_proxies`).",
    ),
]


def _whole_number(value: Any) -> Any:
    """JSON's integers, ``5.0`` included, and nothing else (no ``true``, no ``"5"``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("expected an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("expected an integer")
        return int(value)
    return value


Credits = Annotated[
    int,
    Field(ge=0, le=admin.MAX_CREDITS, description="Uses left; null: unlimited."),
    BeforeValidator(_whole_number),
]


class Refill(_Request):
    """Credits refilled to ``amount`` every UTC day or month (a key without ``credits``
    starts full)."""

    interval: Literal["daily", "monthly"]
    amount: Annotated[int, BeforeValidator(_whole_number)] = Field(
        ge=1, le=admin.MAX_CREDITS, description="The credits after each refill."
    )


class CreateKey(_Request):
    name: Name = Field(description="What the key is for, e.g. `billing worker`.")
    scopes: Scopes = Field(
        default_factory=list,
        description="What the key may do; never more than the calling key holds.",
    )
    owner: Owner | None = None
    metadata: Metadata = Field(default_factory=dict)
    expires_in: Annotated[int, Field(ge=1, le=MAX_LIFETIME_SECONDS)] | None = Field(
        default=int(admin.DEFAULT_LIFETIME.total_seconds()),
        description="Lifetime in seconds (default 90 days, but never past the calling key's "
        "own expiry); `null` for a key that never expires. To expire at a set time, change "
        "`expires_at` afterwards.",
    )
    prefix: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,32}$")] | None = Field(
        default=None, description="Key prefix; one of the server's configured prefixes."
    )
    rate_limits: RateLimits = Field(default_factory=list)
    credits: Credits | None = None
    refill: Refill | None = None
    allowed_ips: AllowedIps = Field(default_factory=list)
    roles: Roles = Field(default_factory=list)
    canary: StrictBool = Field(
        default=False,
        description="A canary key: refused exactly like an unknown key, and each use sends "
        "`key.canary_used` (plant it where only an intruder would find it).",
    )

    def to_new_key(self) -> NewKey:
        """The admin layer's request; left-out ``expires_in`` means its default."""
        expires_in: timedelta | Any | None = UNSET
        if "expires_in" in self.model_fields_set:
            expires_in = timedelta(seconds=self.expires_in) if self.expires_in else None
        return NewKey(
            self.name,
            self.scopes,
            expires_in,
            self.owner,
            self.metadata,
            self.prefix,
            self.rate_limits,
            self.credits,
            self.refill.interval if self.refill else None,
            self.refill.amount if self.refill else None,
            self.allowed_ips,
            self.canary,
            self.roles,
        )


def _not_null(schema: dict[str, Any]) -> None:
    """Drop the null branch from a field's schema: left out means unchanged, null is refused."""
    branches = schema.pop("anyOf", None) or []
    schema.pop("default", None)
    schema.update(next((b for b in branches if b.get("type") != "null"), {}))


class UpdateKey(_Request):
    """Only the fields present change (``model_fields_set``). ``owner`` or ``expires_at``
    set to null are cleared; ``name``, ``scopes`` and ``metadata`` may be left out but not
    be null (a null name or scope list is a mistake, not a wish)."""

    name: Name | None = Field(default=None, json_schema_extra=_not_null)
    owner: Owner | None = None
    scopes: Scopes | None = Field(
        default=None, description="Replaces the key's scopes.", json_schema_extra=_not_null
    )
    metadata: Metadata | None = Field(
        default=None, description="Replaces the key's metadata.", json_schema_extra=_not_null
    )
    expires_at: StoredTime | None = Field(
        default=None,
        description="RFC 3339 time with a UTC offset, from 1970 to the end of 9998; null: "
        "never expires. Never past the calling key's own expiry.",
    )
    rate_limits: RateLimits | None = Field(default=None, json_schema_extra=_not_null)
    credits: Credits | None = None
    refill: Refill | None = Field(default=None, description="null: no refill.")
    allowed_ips: AllowedIps | None = Field(
        default=None,
        description="Replaces the key's list of allowed client addresses (`[]`: anywhere).",
        json_schema_extra=_not_null,
    )
    roles: Roles | None = Field(
        default=None, description="Replaces the key's roles (`[]`: none).",
        json_schema_extra=_not_null,
    )

    @field_validator("name", "scopes", "metadata", "rate_limits", "allowed_ips", "roles")
    @classmethod
    def _present_not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be left out, but not null")
        return value

    def to_change(self) -> KeyChange:
        """The admin layer's change: only the fields present."""
        given: dict[str, Any] = {name: getattr(self, name) for name in self.model_fields_set}
        if "refill" in given:
            refill = given.pop("refill")
            given["refill"] = refill.interval if refill else None
            if refill:
                given["refill_amount"] = refill.amount
        return KeyChange(**given)


class RotateKey(_Request):
    # What a schema can say of the three: a fixed grace or a usage-aware one, not both. (The
    # quiet period's least and the longest grace's lower bound, the quiet period, depend on
    # the deployment and on another field: the admin layer checks them, 422.)
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "not": {"required": ["grace_seconds", "grace_until_quiet_seconds"]},
            "dependentRequired": {"grace_max_seconds": ["grace_until_quiet_seconds"]},
        },
    )

    grace_seconds: Annotated[int, Field(ge=0, le=MAX_GRACE_SECONDS)] | None = Field(
        default=None,
        description="How long the old key keeps working (default 24 hours; 0 ends it now). "
        "Not with `grace_until_quiet_seconds`: give `grace_max_seconds` instead.",
    )
    grace_until_quiet_seconds: Annotated[int, Field(ge=1, le=MAX_GRACE_SECONDS)] | None = Field(
        default=None,
        description="A usage-aware grace: the old key keeps working until nobody has used it "
        "for this long (at least 4 times the deployment's usage flush interval plus its "
        "cache TTL: 24 s by default), at most `grace_max_seconds`.",
    )
    grace_max_seconds: Annotated[int, Field(ge=1, le=MAX_GRACE_SECONDS)] | None = Field(
        default=None,
        description="With `grace_until_quiet_seconds`: the longest the old key keeps working "
        "(default 7 days).",
    )

    def grace(self) -> tuple[timedelta | None, timedelta | None]:
        """(grace, quiet) for ``KeyAdmin.rotate``."""
        if self.grace_until_quiet_seconds is None:
            if self.grace_max_seconds is not None:
                raise InvalidValue(
                    "grace_max_seconds bounds a usage-aware grace: give "
                    "grace_until_quiet_seconds too, or use grace_seconds",
                    "grace_max_seconds",
                )
            return _seconds(self.grace_seconds), None
        if self.grace_seconds is not None:
            raise InvalidValue(
                "with grace_until_quiet_seconds, bound the grace with grace_max_seconds, "
                "not grace_seconds",
                "grace_seconds",
            )
        return _seconds(self.grace_max_seconds), _seconds(self.grace_until_quiet_seconds)


def _seconds(value: int | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


class VerifyRequest(_Request):
    key: Annotated[str, StringConstraints(max_length=1024)] = Field(
        description="The key a client presented to your service."
    )
    scopes: Scopes = Field(default_factory=list, description="Scopes the request needs.")
    permissions: Annotated[str, StringConstraints(max_length=MAX_PERMISSIONS_LENGTH)] | None = (
        Field(
            default=None,
            description="An expression over scopes the key must meet as well, like "
            "`orders:read and (orders:write or admin)`: `and`, `or`, `not`, parentheses; "
            "a malformed one is 422 `invalid_permissions`.",
            examples=["orders:read and (orders:write or admin)"],
        )
    )
    ip: Address | None = Field(
        default=None,
        description="The address your service's client connected from. Keys restricted by "
        "address (`allowed_ips`) are refused without it (`ip_not_allowed`).",
    )


class KeyView(BaseModel):
    """A stored key: identity and state, with the key itself masked."""

    id: str
    name: str
    owner: str | None
    key: str = Field(description="The key, masked: enough to recognise it, never to use it.")
    prefix: str
    scopes: list[str]
    metadata: dict[str, Any]
    status: Status
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    disabled: bool
    canary: bool = Field(
        default=False, description="A canary: always refused as unknown, every use reported."
    )
    last_used_at: datetime | None
    replaced_by: str | None
    replaces: str | None
    grace_until: datetime | None = Field(
        description="When a rotated key stops working, as things stand (a usage-aware grace "
        "moves it later with each use)."
    )
    grace_until_quiet_seconds: int | None = Field(
        default=None,
        description="A usage-aware grace: the key stops once unused for this long.",
    )
    grace_max: datetime | None = Field(
        default=None, description="A usage-aware grace: the latest the key stops."
    )
    rate_limits: list[str] = Field(default_factory=list)
    credits: int | None = Field(default=None, description="Uses left; null: unlimited.")
    refill: Refill | None = None
    allowed_ips: list[str] = Field(
        default_factory=list,
        description="Client addresses the key may be used from; empty: anywhere.",
    )
    roles: list[str] = Field(default_factory=list, description="The roles the key holds.")
    effective_scopes: list[str] = Field(
        default_factory=list, description="What the key may do: its scopes and its roles'."
    )


class PutRole(_Request):
    """A role: the scopes every key holding it gets, replaced whole."""

    scopes: Scopes = Field(description="The scopes the role grants.")
    description: Name | None = None


class RoleView(BaseModel):
    name: str
    scopes: list[str]
    description: str | None
    keys: int = Field(description="How many keys that are not revoked hold the role.")
    created_at: datetime | None
    updated_at: datetime | None


class RoleList(BaseModel):
    roles: list[RoleView]


class PutOwner(_Request):
    """An owner's limits, shared by all of its keys; what is left out is none."""

    rate_limits: RateLimits = Field(
        default_factory=list,
        description="Rate limits counted for all of the owner's keys together.",
    )
    credits: Credits | None = Field(
        default=None, description="One balance all of the owner's keys spend from; null: none."
    )
    refill: Refill | None = None
    metadata: Metadata = Field(default_factory=dict)


class OwnerView(BaseModel):
    """An owner's limits and what its keys did."""

    owner: str
    rate_limits: list[str]
    credits: int | None = Field(description="The balance as last written (see credits_left).")
    refill: Refill | None
    metadata: dict[str, Any]
    created_at: datetime | None
    updated_at: datetime | None
    keys: dict[str, int] = Field(description="How many of its keys are in each status.")
    credits_left: int | None = Field(description="Credits left now, after a due refill.")
    requests: dict[str, int] = Field(description="Requests by outcome, as flushed so far.")


class IssuedKeyView(KeyView):
    key: str = Field(description="The full key. This is the only time it is shown.")


class KeyPage(BaseModel):
    keys: list[KeyView]
    next: str | None = Field(description="Pass as `after` for the next page; null at the end.")


class VerificationView(BaseModel):
    id: int
    at: datetime
    request_id: str = Field(description="The X-Request-Id of the answer.")
    key_id: str | None = Field(description="The key's id, when the key was known.")
    key: str | None = Field(description="The key, masked, when it was known.")
    outcome: str = Field(description="An outcome code; `keyturn explain CODE` explains it.")
    client: str | None = Field(description="The client's address, as keyturn judged it.")
    method: str
    path: str = Field(description="The request's path, without its query.")
    user_agent: str
    scopes: list[str] | None = Field(
        default=None,
        description="The scopes the request needed; null for entries logged before they "
        "were recorded.",
    )


class VerificationPage(BaseModel):
    verifications: list[VerificationView]
    next: int | None = Field(description="Pass as `before` for the next page; null at the end.")


class OwnerKeysChanged(BaseModel):
    owner: str
    changed: list[KeyView] = Field(description="The keys changed (those already so are not).")


class AuditEventView(BaseModel):
    id: int
    at: datetime
    actor: str = Field(description="Id of the key that made the change, or `cli:<user>`.")
    action: str
    key_id: str | None
    details: dict[str, Any]


class AuditPage(BaseModel):
    events: list[AuditEventView]
    next: int | None = Field(description="Pass as `before` for the next page; null at the end.")


class VerifiedKeyView(BaseModel):
    id: str
    name: str
    owner: str | None
    scopes: list[str] = Field(description="Its effective scopes: its own and its roles'.")
    roles: list[str] = Field(default_factory=list)
    metadata: dict[str, Any]
    expires_at: datetime | None
    rotated_until: datetime | None = Field(
        default=None,
        description="Set while a rotated key is in its grace period, on a valid answer only: "
        "a successor exists, and this key is accepted until then (the "
        "`Keyturn-Key-Rotated-Until` header of the other faces).",
    )


class VerifyResult(BaseModel):
    valid: bool
    code: str = Field(description="An outcome code; `keyturn explain CODE` explains it.")
    detail: str = Field(description="What exactly happened (empty when valid).")
    hint: str = Field(description="What the caller should do (empty when valid).")
    key: VerifiedKeyView | None = Field(description="The key checked, when it is known.")
    missing: str | None = Field(
        default=None,
        description="For `insufficient_scope`: what the key lacks, as an expression (the "
        "missing scopes, or the part of `permissions` it fails).",
    )
    retry_after: int | None = Field(
        default=None,
        description="For a refusal that waiting ends (`rate_limited`, `lookups_throttled`, "
        "spent credits that refill): the seconds to wait, as the other faces' `Retry-After` "
        "header says.",
    )


class FieldError(BaseModel):
    field: str = Field(description="Where the bad value is, e.g. `body.scopes.0`.")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, with keyturn's `code` and `hint`."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    hint: str | None = None
    required_scopes: list[str] | None = None
    errors: list[FieldError] | None = None


class Health(BaseModel):
    status: str


# -- webhooks (``keyturn._webhooks``) ---------------------------------------------------

EventType = Annotated[
    str,
    StringConstraints(max_length=64),
    Field(description="An event type such as `key.revoked`, or `*` for every event."),
]


class CreateWebhook(_Request):
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)] = Field(
        description="Where to post events: http or https, public addresses only unless the "
        "deployment allows its own network (`webhook_allow_private`)."
    )
    events: Annotated[list[EventType], Field(min_length=1, max_length=32)] = Field(
        default_factory=lambda: ["*"], description='The event types to send; `["*"]`: all.'
    )
    description: Annotated[str, StringConstraints(max_length=200)] | None = None


class WebhookView(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str | None
    created_at: datetime


class CreatedWebhookView(WebhookView):
    secret: str = Field(
        description="The signing secret (`whsec_...`). This is the only time it is shown."
    )


class WebhookPage(BaseModel):
    webhooks: list[WebhookView]


class DeliveryView(BaseModel):
    id: int
    webhook_id: str
    event_id: str = Field(description="The `webhook-id` header of every attempt.")
    type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status: int | None = Field(description="The receiver's HTTP status, if it answered.")
    last_error: str | None


class DeliveryPage(BaseModel):
    deliveries: list[DeliveryView]
    next: int | None = Field(description="Pass as `before` for the next page; null at the end.")


# -- leak reports (``keyturn.admin.KeyAdmin.leaked``) ------------------------------------


class ReportLeak(_Request):
    key: Annotated[str, StringConstraints(max_length=1024)] = Field(
        description="The key you found. The answer is the same whatever it is."
    )
    url: Annotated[str, StringConstraints(max_length=2048)] | None = Field(
        default=None, description="Where you found it."
    )


class LeakReceived(BaseModel):
    status: Literal["received"]


class GitHubFeedback(BaseModel):
    """One entry of GitHub's partner feedback: was the token a live key of ours?"""

    token_hash: str = Field(description="SHA-256 of the token, hex (never the token).")
    token_type: str
    label: Literal["true_positive", "false_positive"]


class CallerView(BaseModel):
    client: str | None = Field(description="The client's address, as keyturn judged it.")
    method: str
    path: str = Field(description="The request's path, without its query.")
    requests: int = Field(description="Requests with this key (any outcome).")
    last_seen: datetime


class CallerList(BaseModel):
    key_id: str
    since: datetime
    callers: list[CallerView] = Field(
        description="From the verification log, the latest first: who used the key since "
        "`since` (for a rotated key, by default, since its rotation: who still uses it)."
    )


class SuggestionRequests(BaseModel):
    logged: int = Field(description="Accepted requests in the verification log.")
    counted: int = Field(description="Accepted requests the usage counters saw (every face).")


class SuggestionView(BaseModel):
    """What the key's requests needed over the last `days` days."""

    key_id: str
    days: int
    since: datetime
    requests: SuggestionRequests
    complete: bool = Field(
        description="Every accepted request counted was logged with what it needed: only "
        "then is narrowing the key to the suggestion safe."
    )
    scopes: list[str] | None = Field(description="The scopes needed; null: not known.")
    unused_scopes: list[str] = Field(description="Scopes the key holds that were not needed.")
    allowed_ips: list[str] | None = Field(
        description="The clients' addresses as ranges (/24, /48, or single addresses when a "
        "range had at most 4); null: not known."
    )
    reasons: list[str] = Field(description="Why the suggestion is not complete, if it is not.")


class NarrowKey(_Request):
    """Take scopes away, confine to fewer addresses: never widens (422 otherwise)."""

    scopes: Scopes | None = Field(
        default=None, description="The scopes to keep: each one the key holds now."
    )
    allowed_ips: AllowedIps | None = Field(
        default=None,
        description="Where the key may be used from: inside its current allow-list.",
    )
