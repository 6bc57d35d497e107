"""Keys made at test time from the catalogues' own patterns, never written down.

A literal credential in a test file would be a leak in its own right (and GitHub's push
protection blocks some shapes), so every key is drawn here: uniformly random characters
for each part of a catalogued pattern, with the checksum computed where the format has one.
"""

from __future__ import annotations

import re
import secrets
import zlib
from dataclasses import dataclass
from re import _constants as sre_c  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]

from keyturn._providers import PROVIDERS, KeyType, Provider
from keyturn.keys import BASE62, encode_base62, generate_key

_random = secrets.SystemRandom()


_PRINTABLE = [chr(c) for c in range(0x21, 0x7F)]
_CATEGORIES = {
    sre_c.CATEGORY_DIGIT: [chr(c) for c in range(0x30, 0x3A)],
    sre_c.CATEGORY_WORD: list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_"),
    sre_c.CATEGORY_SPACE: [" "],
    sre_c.CATEGORY_NOT_SPACE: _PRINTABLE,
}


def _chars(items: list[tuple[object, object]]) -> list[str]:
    out: list[str] = []
    negate = False
    for op, arg in items:
        if op is sre_c.NEGATE:
            negate = True
        elif op is sre_c.LITERAL:
            out.append(chr(arg))  # type: ignore[arg-type]
        elif op is sre_c.RANGE:
            lo, hi = arg  # type: ignore[misc]
            out.extend(chr(c) for c in range(lo, min(hi, 0x7E) + 1))
        elif op is sre_c.CATEGORY and arg in _CATEGORIES:
            out.extend(_CATEGORIES[arg])  # type: ignore[index]
        else:
            raise NotImplementedError(op)
    if negate:  # anything printable but these (and no quote that would end a string)
        return [c for c in _PRINTABLE if c not in out and c not in "'\"`\\"]
    return [c for c in out if c >= " "] or out


def _repeat(low: int, high: int) -> int:
    """Optional parts left out, open-ended runs key-sized, counted ranges drawn within."""
    if high is sre_c.MAXREPEAT:
        return _random.randint(max(low, 16), max(low, 16) + 24)
    if low == 0:
        return 0
    return _random.randint(low, min(high, low + 30))


def _draw(parsed: sre_parse.SubPattern) -> str:
    text = []
    for op, arg in parsed:
        if op is sre_c.LITERAL:
            text.append(chr(arg))
        elif op is sre_c.NOT_LITERAL:
            text.append(_random.choice([c for c in "ABCDEFGHJKLMNPQRSTUVWXYZ" if ord(c) != arg]))
        elif op is sre_c.IN:
            text.append(_random.choice(_chars(arg)))
        elif op is sre_c.ANY:
            text.append(_random.choice("ABCDEFGHJKLMNPQRSTUVWXYZ"))
        elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT):
            low, high, sub = arg
            text.extend(_draw(sub) for _ in range(_repeat(low, high)))
        elif op is sre_c.SUBPATTERN:
            text.append(_draw(arg[-1]))
        elif op is sre_c.BRANCH:
            text.append(_draw(_random.choice(arg[1])))
        elif op in (sre_c.AT, sre_c.ASSERT, sre_c.ASSERT_NOT):
            continue  # zero-width: the caller's context decides
        elif op is sre_c.GROUPREF:
            text.append("")
        else:
            raise NotImplementedError(op)
    return "".join(text)


def from_pattern(pattern: re.Pattern[str]) -> str:
    """A uniformly random string the pattern fully matches."""
    value = _draw(sre_parse.parse(pattern.pattern))
    assert pattern.fullmatch(value), (pattern.pattern, value)
    return value


def draw(source: str) -> str:
    """A random string drawn part by part from a pattern (zero-width assertions skipped:
    put it where its context fits, such as on a line of its own)."""
    return _draw(sre_parse.parse(source))


def github_checksummed(prefix: str) -> str:
    body = "".join(_random.choice(BASE62) for _ in range(30))
    return prefix + body + encode_base62(zlib.crc32(body.encode()), 6)


def make_key(key_type: KeyType) -> str:
    """A key of this type, with a valid checksum where the type has one."""
    if key_type.checksum == "github-crc32":
        return github_checksummed(key_type.prefix)
    assert not key_type.checksum, f"teach keygen the {key_type.checksum} checksum"
    return from_pattern(key_type.pattern)


@dataclass(frozen=True)
class Planted:
    provider_id: str  # "keyturn" for keyturn's own keys
    type_name: str
    key: str


SECRET_TYPES: list[tuple[Provider, KeyType]] = [
    (p, t) for p in PROVIDERS for t in p.key_types if t.distinctive and t.secret
]
IDENTIFIER_TYPES: list[tuple[Provider, KeyType]] = [
    (p, t) for p in PROVIDERS for t in p.key_types if t.distinctive and not t.secret
]
KEYTURN_PREFIXES = ["kt_live", "kt_test", "acme_live", "a", "shop_9_prod", "ghp", "sk_live"]


def provider_keys() -> list[Planted]:
    """One key of every catalogued distinctive secret type."""
    return [Planted(p.id, t.name, make_key(t)) for p, t in SECRET_TYPES]


def keyturn_keys() -> list[Planted]:
    return [Planted("keyturn", prefix, generate_key(prefix)) for prefix in KEYTURN_PREFIXES]


def identifiers() -> list[str]:
    """Distinctive shapes that are not secrets (Stripe pk_, Twilio SIDs): never findings."""
    return [from_pattern(t.pattern) for _, t in IDENTIFIER_TYPES]


def broken_checksum(key: str) -> str:
    """The key with its last character changed: shape intact, checksum wrong."""
    last = key[-1]
    return key[:-1] + BASE62[(BASE62.index(last) + 1) % 62]


def near_misses() -> list[str]:
    """Strings a careless scanner reports: wrong checksum, wrong length, placeholders, docs."""
    misses = []
    for _, key_type in SECRET_TYPES:
        if key_type.checksum:
            misses.append(broken_checksum(make_key(key_type)))
    for prefix in ("kt_live", "acme_test"):
        key = generate_key(prefix)
        misses += [broken_checksum(key), key[:-1], key + "Q"]
    misses += [
        github_checksummed("ghp_")[:-1],  # one character short
        github_checksummed("ghp_") + "7",  # one too many
        "sk-proj-" + "x" * 40,
        "sk_live_" + "X" * 24,
        "ghp_" + "x" * 36,
        "sk-ant-api03-" + "x" * 93 + "AA",
        "sk-ant-api03-" + "EXAMPLE" * 13 + "2AA",  # a word repeated: a stand-in, not typed
        # keyturn's own specification examples (docs/key-format.md), valid checksums and all
        "kt_live_" + "0123456789ABCDEFGHIJabcdefghij" + "1n1GV2",
        "acme_test_" + "z" * 30 + "0XNw4r",
        # Stripe's documentation test key, which every reader of its API reference sees
        "sk_test_" + "4eC39HqLyjWDarjtT1zdp7dc",
        "sk_live_EXAMPLEexample1234567890",
    ]
    return misses


def typed_keys() -> list[str]:
    """Keys of a provider's exact shape (no checksum) whose characters count up like typed
    ones: found, but only as ``low`` (a test key, or a real one somebody made up)."""
    counting = "abc123def456ghi789jkl012mno345pqr678stu901vwx234yz"
    return [
        "AIza" + "0123456789" * 3 + "ABCDE",
        "sk-ant-api03-" + (counting * 2)[:93] + "AA",
    ]


# ---- Structured secrets, made the way their issuers make them (tests only) ----------

def _b64(n_bytes: int) -> str:
    import base64

    return base64.b64encode(secrets.token_bytes(n_bytes)).decode()


def jwt() -> str:
    """An HS256 JSON Web Token signed with a random key (RFC 7519)."""
    import base64
    import hashlib
    import hmac
    import json

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = part(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = part(json.dumps({"sub": secrets.token_hex(8), "iat": 1_700_000_000}).encode())
    sig = hmac.new(secrets.token_bytes(32), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{part(sig)}"


def private_keys() -> dict[str, str]:
    """Fresh private keys in the PEM and OpenSSH encodings people commit."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    enc = serialization.Encoding
    fmt = serialization.PrivateFormat
    none = serialization.NoEncryption()
    return {
        "rsa-pkcs1": rsa_key.private_bytes(enc.PEM, fmt.TraditionalOpenSSL, none).decode(),
        "rsa-pkcs8": rsa_key.private_bytes(enc.PEM, fmt.PKCS8, none).decode(),
        "ec": ec.generate_private_key(ec.SECP256R1()).private_bytes(
            enc.PEM, fmt.TraditionalOpenSSL, none).decode(),
        "openssh": ed25519.Ed25519PrivateKey.generate().private_bytes(
            enc.PEM, fmt.OpenSSH, none).decode(),
    }


def family_samples() -> dict[str, tuple[str, str]]:
    """family -> (file name, content): one leak of each commonly leaked kind."""
    import json

    aws_id = "AKIA" + draw("[A-Z2-7]{16}")
    aws_secret = draw("[A-Za-z0-9/+]{40}")
    alnum = "[A-Za-z0-9]"
    pem = private_keys()
    service_account = json.dumps({
        "type": "service_account", "project_id": "billing-prod-4711",
        "private_key_id": secrets.token_hex(20), "private_key": pem["rsa-pkcs8"],
        "client_email": "deployer@billing-prod-4711.iam.gserviceaccount.com",
        "client_id": draw("[0-9]{21}"),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
    }, indent=2)
    password = draw(f"{alnum}{{20}}")
    return {
        "aws-key-pair": ("aws.env", f"AWS_ACCESS_KEY_ID={aws_id}\n"
                                    f"AWS_SECRET_ACCESS_KEY={aws_secret}\n"),
        "aws-session-token": ("aws_session.ini", "[default]\naws_session_token = "
                              + "IQoJb3JpZ2luX2VjE" + draw("[A-Za-z0-9/+]{300}") + "=\n"),
        "azure-storage": ("storage.config", "DefaultEndpointsProtocol=https;AccountName=acmeprod;"
                          f"AccountKey={_b64(64)};EndpointSuffix=core.windows.net\n"),
        "azure-service-bus": ("bus.json", '{"bus": "Endpoint=sb://acme-prod.servicebus.windows.net/;'
                              "SharedAccessKeyName=RootManageSharedAccessKey;"
                              f'SharedAccessKey={_b64(32)}"}}\n'),
        "azure-cosmos": ("cosmos.py", 'COSMOS = "AccountEndpoint=https://acme-orders.documents.'
                         f'azure.com:443/;AccountKey={_b64(64)};"\n'),
        "atlassian": ("jira.yaml", "jira_api_token: ATATT3xFfGF0" + draw("[A-Za-z0-9_=-]{186}")
                      + "\n"),
        "vault": ("vault.sh", "export VAULT_TOKEN=hvs." + draw("[A-Za-z0-9_-]{91}") + "\n"),
        "docker-hub": ("docker.env",
                       "DOCKERHUB_TOKEN=dckr_pat_" + draw("[A-Za-z0-9_-]{27}") + "\n"),
        "sentry": ("sentry.py", 'SENTRY_AUTH_TOKEN = "sntryu_' + secrets.token_hex(32) + '"\n'),
        "database-url": ("db.env", f"DATABASE_URL=postgres://billing:{password}@db.internal:5432"
                         "/billing\n"),
        "mongodb-url": ("mongo.py", 'MONGO = "mongodb+srv://app:' + draw(f"{alnum}{{24}}")
                        + '@cluster0.ab1cd.mongodb.net/prod"\n'),
        "pem-rsa-pkcs1": ("id_rsa", pem["rsa-pkcs1"]),
        "pem-pkcs8": ("key.pem", pem["rsa-pkcs8"]),
        "pem-ec": ("ec.pem", pem["ec"]),
        "openssh": ("id_ed25519", pem["openssh"]),
        "gcp-service-account": ("service-account.json", service_account + "\n"),
        "slack-webhook": ("notify.py", 'HOOK = "https://hooks.slack.com/services/T'
                          + draw("[A-Z0-9]{10}") + "/B" + draw("[A-Z0-9]{10}") + "/"
                          + draw(f"{alnum}{{24}}") + '"\n'),
        "slack-token": ("slack.env", "SLACK_BOT_TOKEN=xoxb-" + draw("[0-9]{12}") + "-"
                        + draw("[0-9]{13}") + "-" + draw(f"{alnum}{{24}}") + "\n"),
        "discord-webhook": ("discord.py", 'HOOK = "https://discord.com/api/webhooks/'
                            + draw("[0-9]{19}") + "/" + draw("[A-Za-z0-9_-]{68}") + '"\n'),
        "teams-webhook": ("teams.py", 'HOOK = "https://acme.webhook.office.com/webhookb2/'
                          + _uuid() + "@" + _uuid() + "/IncomingWebhook/" + secrets.token_hex(16)
                          + "/" + _uuid() + '"\n'),
        "jwt": ("client.py", f'AUTH = "Bearer {jwt()}"\n'),
        # A digit and a letter at the end: one all-letter draw in 300 is no key's shape.
        "generic-assignment": ("settings.py", 'API_SECRET = "' + draw(f"{alnum}{{30}}") + '7k"\n'),
        "azure-sas": ("blob.env", "BLOB_URL=https://acmeprod.blob.core.windows.net/exports?sv=2022-"
                      "11-02&ss=b&srt=co&sp=rl&se=2031-01-01T00:00:00Z&st=2024-01-01T00:00:00Z"
                      "&spr=https&sig=" + _b64(32).replace("+", "%2B").replace("/", "%2F")
                      .replace("=", "%3D") + "\n"),
        "azure-storage-key-name": ("storage.ts", "export const key =\n  process.env.STORAGE_KEY"
                                   f' ||\n  "{_b64(64)}";\n'),
        "registry-auth": ("config.json", '{"auths": {"registry.acme.dev": {"auth": "'
                          + _basic(f"deploy:{password}") + '"}}}\n'),
        "basic-auth-header": ("call.sh", "curl -H 'Authorization: Basic "
                              + _basic(f"ci:{password}") + "' https://api.acme.dev/\n"),
        "aws-key-id-beside-secret": ("aws.yaml", f"credentials:\n  id: {aws_id}\n"
                                     f"  secret: {aws_secret}\n"),
        "new-relic-license": ("newrelic.ini", "license_key = " + secrets.token_hex(16)
                              + "FFFFNRAL\n"),
        "tableau-pat": ("tableau.txt", "pat name: ci-bot\nsecret: " + _b64(16) + ":"
                        + draw(f"{alnum}{{32}}") + "\n"),
        "atlassian-api-token-24": ("jira.py", 'JIRA_API_TOKEN = "' + draw(f"{alnum}{{22}}")
                                   + '7k"\n'),
        "atlassian-dc-pat": ("jira.env", "JIRA_TOKEN=" + _atlassian_dc_pat() + "\n"),
        "twilio-api-key": ("twilio.env", "TWILIO_API_KEY_SID=SK" + secrets.token_hex(16)
                           + "\nTWILIO_API_KEY_SECRET=" + draw(f"{alnum}{{30}}") + "7k\n"),
        "aws-appsync-key": ("appsync.ts", 'const url = "https://' + draw("[a-z0-9]{26}")
                            + '.appsync-api.us-east-1.amazonaws.com/graphql";\nconst apiKey = '
                            + '"da2-' + draw("[a-z0-9]{24}") + '7k";\n'),
        # Typed, not drawn (the alphabet), yet of AppSync's exact shape beside its endpoint:
        # reported, at confidence low.
        "aws-appsync-key-typed": ("appsync.js", 'const url = "https://' + draw("[a-z0-9]{26}")
                                  + '.appsync-api.eu-west-1.amazonaws.com/graphql";\n'
                                  'const apiKey = "da2-abcdefghijklmnopqrstuvwxyz";\n'),
        "github-oauth-app": ("github.env", "GITHUB_CLIENT_ID=" + draw(f"{alnum}{{18}}")
                             + "7k\nGITHUB_CLIENT_SECRET=" + secrets.token_hex(20) + "\n"),
        "github-long-token": ("gh.env", "GH_TOKEN=ghs_" + draw("[A-Za-z0-9]{120}") + "7k\n"),
        "postman-key": ("postman.json", '{"postman_api_key": "PMAK-'
                        + draw("[A-Za-z0-9]{57}") + '7k"}\n'),
        "db-connection-string": ("appsettings.json", '{"Db": "Server=db.internal;Database=app;'
                                 f'User Id=app;Password={password};"}}\n'),
        "provider-shape-near-name": ("notes.md", "[DEBUG] sending request to the box API, "
                                     "key=" + draw(f"{alnum}{{30}}") + "7k\n"),
    }


def _basic(credentials: str) -> str:
    import base64

    return base64.b64encode(credentials.encode()).decode()


def _atlassian_dc_pat() -> str:
    """A Jira/Confluence Data Center PAT: base64 of a numeric id, a colon, random bytes."""
    import base64

    return base64.b64encode(draw("[1-9][0-9]{11}").encode() + b":"
                            + secrets.token_bytes(20)).decode()


def _uuid() -> str:
    import uuid

    return str(uuid.uuid4())
