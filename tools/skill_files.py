"""System skills: folders under `tools/skills/` with a `SKILL.md` (YAML front matter + body).

A skill folder holds `SKILL.md` and optional `scripts/` and `examples/`. The front matter names
the skill (`name`, `description`, `emoji`, `features`); the body is the instructions the model
loads with `read_skill`.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

logger = logging.getLogger("cortex.tools")

SYSTEM_SKILLS_DIR = Path(__file__).resolve().parent / "skills"
SKILL_FILE = "SKILL.md"
FEATURES: tuple[str, ...] = ("chat", "swarm_control", "voice_chat", "agent_harness")


class SkillFileError(ValueError):
    """A SKILL.md without the front matter a skill needs."""


@dataclass(frozen=True)
class SystemSkill:
    """One skill folder shipped in the repository; read-only."""

    name: str
    description: str
    emoji: str
    features: tuple[str, ...]
    instructions: str
    folder: Path
    files: tuple[str, ...] = field(default=())


def parse_skill_md(text: str) -> tuple[dict[str, Any], str]:
    """Split a SKILL.md into its front matter (a dict) and the instructions below it."""
    if not text.startswith("---"):
        raise SkillFileError("SKILL.md must start with '---' front matter.")
    parts = text.split("\n---", 1)
    if len(parts) != 2:
        raise SkillFileError("SKILL.md front matter is not closed with '---'.")
    meta = yaml.safe_load(parts[0].removeprefix("---")) or {}
    if not isinstance(meta, dict):
        raise SkillFileError("SKILL.md front matter must be a mapping.")
    for key in ("name", "description"):
        if not isinstance(meta.get(key), str) or not meta[key].strip():
            raise SkillFileError(f"SKILL.md front matter needs '{key}'.")
    body = parts[1].split("\n", 1)[1] if "\n" in parts[1] else ""
    return meta, body.strip() + "\n"


def render_skill_md(
    *, name: str, description: str, emoji: str, features: list[str] | tuple[str, ...], body: str
) -> str:
    """The SKILL.md text of a skill, as `read_skill` shows it."""
    meta = {
        "name": name,
        "description": description,
        "emoji": emoji,
        "features": list(features),
    }
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False).strip()
    return f"---\n{front}\n---\n\n{body.strip()}\n"


def _load_folder(folder: Path) -> SystemSkill:
    meta, body = parse_skill_md((folder / SKILL_FILE).read_text(encoding="utf-8"))
    files = sorted(
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and not path.is_symlink() and "__pycache__" not in path.parts
    )
    features = meta.get("features") or []
    return SystemSkill(
        name=str(meta["name"]).strip(),
        description=" ".join(str(meta["description"]).split()),
        emoji=str(meta.get("emoji") or ""),
        features=tuple(str(f) for f in features),
        instructions=body,
        folder=folder,
        files=tuple(files),
    )


@functools.cache
def system_skills() -> dict[str, SystemSkill]:
    """Every system skill by name; folders without a valid SKILL.md are skipped and logged."""
    found: dict[str, SystemSkill] = {}
    if not SYSTEM_SKILLS_DIR.is_dir():
        return found
    for folder in sorted(p for p in SYSTEM_SKILLS_DIR.iterdir() if p.is_dir()):
        if not (folder / SKILL_FILE).is_file():
            continue
        try:
            skill = _load_folder(folder)
        except (OSError, SkillFileError, yaml.YAMLError) as exc:
            logger.error("System skill %s not loaded: %s", folder.name, exc)
            continue
        found[skill.name] = skill
    return found


def system_skill_file(skill: SystemSkill, file_path: str) -> str | None:
    """The text of `file_path` inside the skill folder, or None when it is not in the folder.

    Containment is checked on real paths, so `..` and symlinks cannot leave the folder.
    """
    root = skill.folder.resolve()
    target = (root / file_path).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        return None
    return target.read_text(encoding="utf-8", errors="replace")
