"""keyturn inside web frameworks: one adapter core, a thin module per framework.

``guard`` holds everything the frameworks share (which paths need which scopes, the one
verification call, the full HTTP answer, the key a handler sees), so each framework module
only translates its request and response types. Import the one you use; each framework is
an optional extra (``pip install 'keyturn[fastapi]'``) and nothing here imports it eagerly:

- ``keyturn.integrations.asgi``    - pure ASGI middleware (Starlette, FastAPI, any ASGI app)
- ``keyturn.integrations.fastapi`` - a security dependency that shows in OpenAPI
- ``keyturn.integrations.flask``   - an extension and the ``@require_key`` decorator
- ``keyturn.integrations.django``  - Django middleware
- ``keyturn.integrations.drf``     - Django REST framework authentication and permission
"""

from __future__ import annotations

from keyturn._path_rules import PathRules
from keyturn.integrations.guard import Guard
from keyturn.integrations.identity import VerifiedKey

__all__ = ["Guard", "PathRules", "VerifiedKey"]
