"""Every variable the settings read is documented in .env.example."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_variable_is_documented():
    settings_text = (ROOT / "cortex" / "settings.py").read_text()
    read = set(re.findall(r"env(?:\.\w+)?\(\s*\"([A-Z][A-Z0-9_]+)\"", settings_text))
    read |= set(re.findall(r"_required_in_production\(\s*\"([A-Z0-9_]+)\"", settings_text))
    # Variables whose names are built in a loop are documented by their pattern.
    read = {name for name in read if "{" not in name}
    documented = set(
        re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M)
    )
    missing = sorted(read - documented)
    assert not missing, f"undocumented in .env.example: {missing}"
