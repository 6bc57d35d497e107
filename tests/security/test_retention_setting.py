"""``verification_retention`` written as a number in the config file (TOML has ``nan``,
``inf`` and integers of any size) is a number of seconds that can be kept: ``nan`` was
accepted (no comparison with a minute fails for it) and then no entry was ever purged,
the writer failing on it once a minute, so client addresses stayed for ever; ``inf`` and
1e308 likewise, and an integer too large for a float crashed loading. Each is a clear
error naming the setting, as the environment's ``KEYTURN_VERIFICATION_RETENTION`` is."""

from __future__ import annotations

from pathlib import Path

import pytest

from keyturn.config import SettingsError, load_settings


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e308", "1" + "0" * 400])
def test_a_retention_that_cannot_be_kept_is_refused(tmp_path: Path, value: str) -> None:
    config = tmp_path / "keyturn.toml"
    config.write_text(f"verification_retention = {value}\n")
    with pytest.raises(SettingsError, match="verification_retention"):
        load_settings(config_file=str(config), environ={})


def test_a_retention_in_seconds_still_works(tmp_path: Path) -> None:
    config = tmp_path / "keyturn.toml"
    config.write_text("verification_retention = 86400\n")
    assert load_settings(config_file=str(config), environ={}).verification_retention == 86400
