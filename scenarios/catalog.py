"""Built-in scenarios shipped with lmscope, and finding a scenario by name or path."""

from __future__ import annotations

import difflib
from pathlib import Path

from scenarios.errors import ScenarioError
from scenarios.scenario import Scenario, load_scenario

BUILTIN_DIR = Path(__file__).parent / "builtin"


def builtin_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def builtin_scenarios() -> list[Scenario]:
    return [load_scenario(BUILTIN_DIR / f"{name}.yaml") for name in builtin_names()]


def find_scenario(name_or_path: str) -> Scenario:
    """A scenario file path, or the name of a built-in scenario.

    Raises:
        ScenarioError: neither a file nor a built-in name (with a did-you-mean), or invalid.
    """
    path = Path(name_or_path).expanduser()
    if path.is_file() or path.suffix in (".yaml", ".yml"):
        return load_scenario(path)
    if name_or_path in builtin_names():
        return load_scenario(BUILTIN_DIR / f"{name_or_path}.yaml")
    close = difflib.get_close_matches(name_or_path, builtin_names(), n=1)
    raise ScenarioError(f"no scenario file or built-in scenario named {name_or_path!r}",
                        hint=f"did you mean '{close[0]}'?" if close else "`lmscope scenarios` lists the built-in ones")
