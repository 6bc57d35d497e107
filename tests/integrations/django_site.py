"""The test app for Django and DRF: the same three paths as every framework's test app.

URLconfs are classes here: Django accepts any object with ``urlpatterns``, and a class is
hashable, as its resolver cache needs. ``plain`` routes to function views behind the
keyturn middleware; ``rest`` to DRF views using keyturn's authentication and permission.
"""

from __future__ import annotations

from typing import ClassVar

from django.http import HttpRequest, JsonResponse
from django.urls import path, re_path
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter
from rest_framework.views import APIView
from rest_framework.viewsets import ViewSet

from keyturn.integrations.drf import HasScopes, KeyturnAuthentication


def whoami(request: HttpRequest) -> JsonResponse:
    return JsonResponse(request.keyturn_key.as_dict())  # type: ignore[attr-defined]


def health(request: HttpRequest) -> JsonResponse:
    assert not hasattr(request, "keyturn_key")
    return JsonResponse({"ok": True})


class plain:  # a URLconf: Django only reads its urlpatterns
    urlpatterns: ClassVar = [path("items", whoami), path("admin", whoami), path("health", health)]


class KeyView(APIView):
    authentication_classes = (KeyturnAuthentication,)
    permission_classes = (HasScopes,)

    def get(self, request: Request) -> Response:
        assert request.user.key is request.auth
        return Response(request.auth.as_dict())


class Items(KeyView):
    required_scopes: ClassVar = {"GET": ["items:read"], "POST": ["items:write"]}


class Admin(KeyView):
    permission_classes = (HasScopes.require("admin"),)


class Health(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class Authenticated(APIView):
    """DRF's own IsAuthenticated: a missing key must still be a 401, never a 403."""

    authentication_classes = (KeyturnAuthentication,)
    permission_classes = (IsAuthenticated,)

    def get(self, request: Request) -> Response:
        return Response({"user": str(request.user)})


class rest:  # a URLconf: Django only reads its urlpatterns
    urlpatterns: ClassVar = [
        path("items", Items.as_view()),
        path("admin", Admin.as_view()),
        path("health", Health.as_view()),
        path("authenticated", Authenticated.as_view()),
    ]


def echo(request: HttpRequest, rest: str = "") -> JsonResponse:
    key = getattr(request, "keyturn_key", None)
    return JsonResponse({"routed": request.path_info, "key": key.id if key else None})


class ItemViewSet(ViewSet):
    """Guarded by the middleware's path rules only, as a DRF router serves it."""

    authentication_classes = ()
    permission_classes = (AllowAny,)

    def list(self, request: Request, format: str | None = None) -> Response:
        return Response({"items": []})

    def retrieve(self, request: Request, pk: str, format: str | None = None) -> Response:
        return Response({"item": pk})


class Reports(APIView):
    """Scopes by method, as a dict with lower-case keys: GET's hold for HEAD too."""

    authentication_classes = (KeyturnAuthentication,)
    permission_classes = (HasScopes,)
    required_scopes: ClassVar = {"get": ["reports"]}

    def get(self, request: Request) -> Response:
        return Response({"reports": []})


_router = DefaultRouter()
_router.register("items", ItemViewSet, basename="item")


class routed:  # a URLconf: a DRF router, a scoped view, and an echo of any other path
    urlpatterns: ClassVar = [
        *_router.urls,
        path("reports", Reports.as_view()),
        re_path(r"^(?P<rest>.*)$", echo),
    ]


class echoing:  # a URLconf: any path, echoed
    urlpatterns: ClassVar = [re_path(r"^(?P<rest>.*)$", echo)]


urlpatterns = plain.urlpatterns
