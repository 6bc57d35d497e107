"""The scanner's finding codes and how sure a detector is: the words every report shares.

The codes are entries of the outcome catalogue (``outcomes.toml``), so ``keyturn explain
leaked_provider_key`` says what a scan report means and how to fix it.
"""

from __future__ import annotations

from typing import Final, Literal

Confidence = Literal["certain", "high", "medium", "low"]

LEAKED_KEYTURN_KEY: Final = "leaked_keyturn_key"
LEAKED_PROVIDER_KEY: Final = "leaked_provider_key"
POSSIBLE_SECRET: Final = "possible_secret"  # noqa: S105 - a code, not a secret
ENV_FILE_TRACKED: Final = "env_file_tracked"
ENV_FILE_NOT_IGNORED: Final = "env_file_not_ignored"

CODES: Final = (
    LEAKED_KEYTURN_KEY,
    LEAKED_PROVIDER_KEY,
    POSSIBLE_SECRET,
    ENV_FILE_TRACKED,
    ENV_FILE_NOT_IGNORED,
)

# certain: a public checksum verifies (a random string passes once in 2**32), or a fact
#          about the repository (a tracked .env);
# high:    a provider's distinctive shape, with no checksum to check;
# medium:  a high-entropy value assigned to a secret-looking name;
# low:     a provider's exact shape with nothing else for it: the value looks hand-typed
#          (it counts up: a test key, or a real one a person made up), a password that is a
#          word, or a credential's identifier that travels beside its secret.
CONFIDENCES: Final[tuple[Confidence, ...]] = ("certain", "high", "medium", "low")
