"""Per-request verify cost: keyturn against the API-key libraries people use today.

Each peer is installed from PyPI into a bench-only environment (``bench/.venv``, made on
first run; the project never depends on them) and used the way its documentation shows,
against keyturn at the same layer, in one process, in one run:

- DRF:     djangorestframework-api-key ``HasAPIKey`` and drf-simple-apikey
           ``APIKeyAuthentication``  vs  keyturn's ``KeyturnAuthentication``
- ASGI:    fastapi-key-auth ``AuthorizerMiddleware``  vs  keyturn's ``KeyturnMiddleware``
- service: keyshield ``ApiKeyService.verify_key`` (Argon2, SQLAlchemy on aiosqlite, as in
           its README), and its ``CachedApiKeyService``  vs  keyturn's ``verify_key``

Every measurement checks one valid key per call on fresh request objects (built outside the
timing), on SQLite for every library that stores keys. Rounds alternate the order of the
subjects; the figure is the median over rounds of the mean per call.

Run:  python3 bench/peers.py [--rounds 5] [--refresh]
(``--refresh`` rebuilds bench/.venv, e.g. to pick up new peer releases.)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH_VENV = ROOT / "bench" / ".venv"
PEERS = {
    # distribution to report: what to install
    "djangorestframework-api-key": ["djangorestframework-api-key"],
    "drf-simple-apikey": ["drf-simple-apikey"],
    "fastapi-key-auth": ["fastapi-key-auth"],
    "keyshield": ["keyshield[argon2,sqlalchemy,aiocache]", "sqlalchemy[asyncio]", "aiosqlite"],
}
BUDGET = 0.25  # seconds of calls per measurement


# -- the bench environment ---------------------------------------------------------------


def unshadow_stdlib_http() -> None:
    """bench/http.py is named like the standard library's ``http``, and a script's folder
    comes first on sys.path: drop this folder before anything imports ``http``."""
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]


def in_bench_venv() -> bool:
    return Path(sys.prefix).resolve() == BENCH_VENV.resolve()


def ensure_environment(refresh: bool) -> None:
    """Re-run this script inside bench/.venv, creating it (and installing peers) if needed."""
    if in_bench_venv():
        return
    python = BENCH_VENV / "bin" / "python"
    if refresh or not python.exists():
        print(f"creating {BENCH_VENV} (keyturn from this checkout, peers from PyPI)", flush=True)
        venv.create(BENCH_VENV, with_pip=True, clear=True)
        (BENCH_VENV / ".gitignore").write_text("*\n")
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "-e", f"{ROOT}[fastapi,django]"], check=True)
        for name, requirements in PEERS.items():
            # One at a time, so that a peer that cannot be installed is reported, not fatal.
            done = subprocess.run([*pip, *requirements], check=False, capture_output=True)
            if done.returncode != 0:
                print(done.stderr.decode(errors="replace")[-2000:], file=sys.stderr)
                print(f"!! could not install {name}; it will be reported as missing", flush=True)
    os.execv(str(python), [str(python), __file__, *sys.argv[1:]])


def version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


# -- measuring ---------------------------------------------------------------------------


@dataclass
class Subject:
    """One library at one layer. ``prepare(n)`` builds n fresh inputs outside the timing and
    returns the timed run over them (sync, or a coroutine function for async subjects)."""

    name: str
    layer: str
    how: str
    prepare: Callable[[int], Callable[[], Any]]
    is_async: bool = False
    kind: str = "keyturn"  # or "hashed lookup", "password hasher", "plaintext compare"
    note: str = ""
    results: list[float] = field(default_factory=list)


def timed(subject: Subject, calls: int, loop: asyncio.AbstractEventLoop) -> float:
    run = subject.prepare(calls)
    start = time.perf_counter()
    if subject.is_async:
        loop.run_until_complete(run())
    else:
        run()
    return (time.perf_counter() - start) / calls


def calibrate(subject: Subject, loop: asyncio.AbstractEventLoop) -> int:
    timed(subject, 1, loop)  # warm: imports, caches, first-query costs
    estimate = timed(subject, 3, loop)
    return max(3, min(20_000, int(BUDGET / max(estimate, 1e-7))))


# -- the subjects ------------------------------------------------------------------------


def setup_django(tmp: Path, peers: set[str]) -> None:
    import django
    from django.conf import settings

    apps = ["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"]
    extra: dict[str, Any] = {}
    if "djangorestframework-api-key" in peers:
        apps.append("rest_framework_api_key")
    if "drf-simple-apikey" in peers:
        from cryptography.fernet import Fernet

        apps.append("drf_simple_apikey")
        extra["DRF_API_KEY"] = {"FERNET_SECRET": Fernet.generate_key().decode()}
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only",
        ALLOWED_HOSTS=["testserver"],
        INSTALLED_APPS=apps,
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": tmp / "dj.db"}},
        USE_TZ=True,
        REST_FRAMEWORK={"UNAUTHENTICATED_USER": None},
        KEYTURN={"KEYS": f"sqlite:///{tmp / 'keyturn.db'}"},
        **extra,
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def drf_requests(header: str, value: str) -> Callable[[int], list[Any]]:
    from django.test import RequestFactory
    from rest_framework.request import Request

    factory = RequestFactory()

    def build(n: int) -> list[Any]:
        return [Request(factory.get("/items", headers={header: value})) for _ in range(n)]

    return build


def keyturn_subjects(tmp: Path) -> tuple[list[Subject], Any]:
    from keyturn import AsyncKeyManager, KeyManager
    from keyturn.integrations.asgi import KeyturnMiddleware
    from keyturn.integrations.django import guard
    from keyturn.integrations.drf import KeyturnAuthentication

    KeyManager(f"sqlite:///{tmp / 'keyturn.db'}").close()  # the integrations only open one
    manager = guard().manager  # the store the DRF classes use, from settings.KEYTURN
    key = manager.create_key("bench", scopes=["items:read"]).key
    async_manager = AsyncKeyManager(manager)
    requests = drf_requests("Authorization", f"Bearer {key}")
    authentication = KeyturnAuthentication()

    def drf(n: int) -> Callable[[], Any]:
        batch = requests(n)

        def run() -> None:
            for request in batch:
                assert authentication.authenticate(request) is not None

        return run

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        return None

    middleware = KeyturnMiddleware(inner, manager)
    headers = [(b"host", b"api.example.com"), (b"authorization", b"Bearer " + key.encode())]

    def asgi(n: int) -> Callable[[], Awaitable[None]]:
        scopes = [
            {"type": "http", "method": "GET", "path": "/items", "headers": headers}
            | {"query_string": b""}
            for _ in range(n)
        ]

        async def run() -> None:
            for scope in scopes:
                await middleware(scope, None, None)  # type: ignore[arg-type]
            assert "keyturn_key" in scopes[-1]["state"]

        return run

    def service(n: int) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            for _ in range(n):
                assert (await async_manager.verify_key(key)).ok

        return run

    def core(n: int) -> Callable[[], None]:
        pairs = [("Authorization", f"Bearer {key}")]

        def run() -> None:
            for _ in range(n):
                assert manager.verify(pairs).ok

        return run

    subjects = [
        Subject("keyturn", "core", "KeyManager.verify(headers)", core),
        Subject("keyturn", "DRF", "KeyturnAuthentication.authenticate", drf),
        Subject("keyturn", "ASGI", "KeyturnMiddleware", asgi, is_async=True),
        Subject("keyturn", "service", "AsyncKeyManager.verify_key", service, is_async=True),
    ]
    return subjects, manager


def drf_api_key_subject() -> Subject:
    from rest_framework_api_key.models import APIKey
    from rest_framework_api_key.permissions import HasAPIKey

    _, key = APIKey.objects.create_key(name="bench")
    permission = HasAPIKey()
    requests = drf_requests("Authorization", f"Api-Key {key}")

    def prepare(n: int) -> Callable[[], None]:
        batch = requests(n)

        def run() -> None:
            for request in batch:
                assert permission.has_permission(request, None)

        return run

    return Subject(
        "djangorestframework-api-key",
        "DRF",
        "HasAPIKey.has_permission",
        prepare,
        kind="hashed lookup",
        note="SHA-512 and a database query on every request",
    )


def drf_simple_apikey_subjects() -> list[Subject]:
    from django.contrib.auth import get_user_model
    from drf_simple_apikey.backends import APIKeyAuthentication
    from drf_simple_apikey.models import APIKey

    user = get_user_model().objects.create(username="bench")
    _, key = APIKey.objects.create_api_key(name="bench", entity=user)
    requests = drf_requests("Authorization", f"Api-Key {key}")

    def prepared(delay: bool) -> Callable[[int], Callable[[], None]]:
        authentication = APIKeyAuthentication()
        if not delay:
            authentication._constant_time_delay = lambda: None  # type: ignore[method-assign]

        def prepare(n: int) -> Callable[[], None]:
            batch = requests(n)

            def run() -> None:
                for request in batch:
                    assert authentication.authenticate(request) is not None

            return run

        return prepare

    how = "APIKeyAuthentication.authenticate"
    return [
        Subject(
            "drf-simple-apikey",
            "DRF",
            how + " (as shipped)",
            prepared(True),
            kind="hashed lookup",
            note="Fernet decryption, a database query, and a 10 ms sleep on every success",
        ),
        Subject(
            "drf-simple-apikey",
            "DRF",
            how + " (10 ms sleep removed)",
            prepared(False),
            kind="hashed lookup",
            note="the work alone: Fernet decryption and a database query",
        ),
    ]


def fastapi_key_auth_subject() -> Subject:
    from fastapi_key_auth import AuthorizerMiddleware

    key = "fka-" + os.urandom(24).hex()
    os.environ["API_KEY_BENCH"] = key  # how it is configured: API_KEY_* variables

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        scope["reached"] = True

    middleware = AuthorizerMiddleware(inner)
    headers = [(b"host", b"api.example.com"), (b"x-api-key", key.encode())]

    def prepare(n: int) -> Callable[[], Awaitable[None]]:
        scopes = [
            {"type": "http", "method": "GET", "path": "/items", "headers": headers}
            | {"query_string": b""}
            for _ in range(n)
        ]

        async def run() -> None:
            for scope in scopes:
                await middleware(scope, None, None)  # type: ignore[arg-type]
            assert scopes[-1].get("reached")

        return run

    return Subject(
        "fastapi-key-auth",
        "ASGI",
        "AuthorizerMiddleware",
        prepare,
        is_async=True,
        kind="plaintext compare",
        note=f"compares the key in clear with every API_KEY_* variable ({len(os.environ)} "
        "variables scanned per request); stores no keys, so nothing to revoke or expire",
    )


def keyshield_subjects(tmp: Path, loop: asyncio.AbstractEventLoop) -> list[Subject]:
    from keyshield import ApiKeyService
    from keyshield.hasher.argon2 import Argon2ApiKeyHasher
    from keyshield.repositories.sql import SqlAlchemyApiKeyRepository
    from keyshield.services.cached import CachedApiKeyService
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp / 'keyshield.db'}")
    sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
    hasher = Argon2ApiKeyHasher(pepper="bench-pepper-" + os.urandom(8).hex())
    # The README's random 0.1-0.3 s delay per verify is latency, not work: set to zero here.
    no_delay = {"min_delay": 0.0, "max_delay": 0.0}

    async def create() -> str:
        async with sessions() as session, session.begin():
            repo = SqlAlchemyApiKeyRepository(session)
            await repo.ensure_table(async_engine=engine)
            _, key = await ApiKeyService(repo=repo, hasher=hasher, **no_delay).create(name="b")
        return key

    key = loop.run_until_complete(create())
    cached_service: list[Any] = []

    def prepared(cached: bool) -> Callable[[int], Callable[[], Awaitable[None]]]:
        def prepare(n: int) -> Callable[[], Awaitable[None]]:
            async def run() -> None:
                for _ in range(n):
                    # A session per request, as the README's FastAPI dependency makes one.
                    async with sessions() as session, session.begin():
                        repo = SqlAlchemyApiKeyRepository(session)
                        if cached:
                            if not cached_service:
                                cached_service.append(
                                    CachedApiKeyService(repo=repo, hasher=hasher, **no_delay)
                                )
                            service = cached_service[0]
                            service._repo = repo
                        else:
                            service = ApiKeyService(repo=repo, hasher=hasher, **no_delay)
                        assert await service.verify_key(key)

            return run

        return prepare

    return [
        Subject(
            "keyshield",
            "service",
            "ApiKeyService.verify_key (Argon2, SQLAlchemy)",
            prepared(False),
            is_async=True,
            kind="password hasher",
            note="Argon2 on every request, a query and a last-used write; its default "
            "random 0.1-0.3 s delay per verify is excluded",
        ),
        Subject(
            "keyshield",
            "service",
            "CachedApiKeyService.verify_key (aiocache)",
            prepared(True),
            is_async=True,
            kind="hashed lookup",
            note="SHA-256 cache in front of Argon2 (a hit skips it); default delay excluded",
        ),
    ]


# -- the run -----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--refresh", action="store_true", help="rebuild bench/.venv")
    args = parser.parse_args()
    unshadow_stdlib_http()
    ensure_environment(args.refresh)

    installed = {name: version(name) for name in PEERS}
    peers = {name for name, v in installed.items() if v}
    loop = asyncio.new_event_loop()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        setup_django(tmp, peers)
        subjects, manager = keyturn_subjects(tmp)
        builders: dict[str, Callable[[], list[Subject]]] = {
            "djangorestframework-api-key": lambda: [drf_api_key_subject()],
            "drf-simple-apikey": drf_simple_apikey_subjects,
            "fastapi-key-auth": lambda: [fastapi_key_auth_subject()],
            "keyshield": lambda: keyshield_subjects(tmp, loop),
        }
        missing: dict[str, str] = {}
        for name, build in builders.items():
            if name not in peers:
                missing[name] = "not installed (see the install output above)"
                continue
            try:
                subjects += build()
            except Exception as error:  # a peer's API changed: report it, measure the rest
                missing[name] = f"could not be used: {type(error).__name__}: {error}"

        calls = {id(s): calibrate(s, loop) for s in subjects}
        print(
            f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {args.rounds} rounds; "
            + ", ".join(f"{n} {v}" for n, v in installed.items() if v),
            flush=True,
        )
        for round_no in range(args.rounds):
            order = subjects if round_no % 2 == 0 else subjects[::-1]
            for subject in order:
                subject.results.append(timed(subject, calls[id(subject)], loop))
            print(f"  round {round_no + 1} done", flush=True)
        manager.close()
    report(subjects, missing)


def report(subjects: list[Subject], missing: dict[str, str]) -> None:
    def cost(s: Subject) -> float:
        return statistics.median(s.results) * 1e6

    ours = {s.layer: s for s in subjects if s.name == "keyturn"}
    print(f"\n{'library':<28} {'layer':<8} {'µs/verify':>11}  {'vs keyturn':>11}  how")
    for s in subjects:
        ratio = "" if s.name == "keyturn" else f"{cost(s) / cost(ours[s.layer]):>9,.1f}x"
        print(f"{s.name:<28} {s.layer:<8} {cost(s):>11,.1f}  {ratio:>11}  {s.how}")
    print("\nverdicts (target: faster than every hashed lookup, >100x any password hasher)")
    for s in subjects:
        if s.name == "keyturn":
            continue
        ratio = cost(s) / cost(ours[s.layer])
        if s.kind == "password hasher":
            verdict = "ok" if ratio > 100 else "MISSED (needs > 100x)"
        elif s.kind == "hashed lookup":
            verdict = "ok" if ratio > 1 else "MISSED (keyturn is not faster)"
        else:
            verdict = "no target (not a hashed lookup)"
        print(f"  {s.name} - {s.how}: {ratio:,.1f}x, {s.kind}: {verdict}")
        print(f"      {s.note}")
    for name, reason in missing.items():
        print(f"  {name}: {reason}")


if __name__ == "__main__":
    main()
