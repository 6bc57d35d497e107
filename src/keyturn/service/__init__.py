"""The service side of ``keyturn serve``: forward-auth, the admin and verify API, the probes.

The whole served app (this and the dashboard) is composed by ``keyturn.app.create_app``.
"""

from keyturn._extras import require

require("serve", "keyturn.service")

