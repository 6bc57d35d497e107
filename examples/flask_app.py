"""keyturn in a Flask app: the extension, and @require_key on the views that need a key.

Run (from the repository root):

    pip install 'keyturn[flask]' && python examples/flask_app.py

It prints a demo key, then serves http://127.0.0.1:5000.
"""

from typing import Any

from demo_key import DATABASE, print_demo_key
from flask import Flask, g

from keyturn.integrations.flask import Keyturn, require_key

app = Flask(__name__)
keyturn = Keyturn(app, DATABASE)


@app.get("/items")
@require_key(scopes=["items:read"])
def items() -> Any:
    return {"items": ["a", "b"], "caller": g.keyturn_key.name}


@app.get("/admin")
@require_key(scopes=["admin"])
def admin() -> Any:
    return {"admin": True, "caller": g.keyturn_key.name}


@app.get("/health")
def health() -> Any:
    return {"ok": True}


if __name__ == "__main__":
    assert keyturn.guard is not None
    print_demo_key(keyturn.guard.manager, "http://127.0.0.1:5000")
    app.run(host="127.0.0.1", port=5000)
