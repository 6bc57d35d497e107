"""Django is configured here, once per test process, before any test module imports it."""

from __future__ import annotations

from collections.abc import Iterator

import django
import pytest
from django.conf import settings

from tests.integrations.cases import Keys, issue_keys

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="keyturn-tests-only",
        ALLOWED_HOSTS=["testserver", "127.0.0.1", "localhost"],
        ROOT_URLCONF="tests.integrations.django_site",
        MIDDLEWARE=[],
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"],
        DATABASES={},
        USE_TZ=True,
        REST_FRAMEWORK={
            "DEFAULT_AUTHENTICATION_CLASSES": [],
            "DEFAULT_PERMISSION_CLASSES": [],
            "UNAUTHENTICATED_USER": None,
        },
    )
    django.setup()


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keys]:
    """Keys in every state, in a SQLite store of the module's own."""
    issued = issue_keys(tmp_path_factory.mktemp("store") / "keyturn.db")
    yield issued
    issued.manager.close()
