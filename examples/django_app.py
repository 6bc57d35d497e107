"""keyturn in a one-file Django project: the middleware, and a DRF view with scopes.

Run (from the repository root):

    pip install 'keyturn[django]' && python examples/django_app.py runserver 127.0.0.1:8000

It prints a demo key, then serves http://127.0.0.1:8000 (/items is plain Django behind the
middleware, /admin a DRF view using keyturn's authentication and permission classes).
"""

import os
import sys

from demo_key import DATABASE, print_demo_key
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=True,
        SECRET_KEY="example-only",  # noqa: S106 - a local example, never deployed
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"],
        MIDDLEWARE=["keyturn.integrations.django.KeyturnMiddleware"],
        DATABASES={},
        KEYTURN={
            "KEYS": DATABASE,
            "OPEN_PATHS": ["/health"],
            "SCOPES": {"/items": ["items:read"]},
        },
        REST_FRAMEWORK={
            "UNAUTHENTICATED_USER": None,
            "EXCEPTION_HANDLER": "keyturn.integrations.drf.exception_handler",
        },
    )
    import django

    django.setup()

# Imported after configure(): DRF reads the settings when its modules load.
from django.http import HttpRequest, JsonResponse
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from keyturn.integrations.drf import HasScopes, KeyturnAuthentication


def items(request: HttpRequest) -> JsonResponse:
    """Plain Django: the middleware checked the key and the path's scopes."""
    return JsonResponse({"items": ["a", "b"], "caller": request.keyturn_key.name})


class Admin(APIView):
    """DRF: request.auth is the key; HasScopes answers 403 insufficient_scope."""

    authentication_classes = (KeyturnAuthentication,)
    permission_classes = (HasScopes.require("admin"),)

    def get(self, request: Request) -> Response:
        return Response({"admin": True, "caller": request.auth.name})


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


urlpatterns = [path("items", items), path("admin", Admin.as_view()), path("health", health)]

if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    from keyturn.integrations.django import guard

    # runserver's autoreloader runs this file twice; issue the key in the serving process.
    serving = os.environ.get("RUN_MAIN") == "true" or "--noreload" in sys.argv
    if "runserver" in sys.argv and serving:
        print_demo_key(guard().manager, "http://127.0.0.1:8000")
    execute_from_command_line(sys.argv)
