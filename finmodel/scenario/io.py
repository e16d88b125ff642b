"""Reading and writing scenarios: presets, TOML files, ``extends``, updates, error messages."""

from __future__ import annotations

import copy
import errno
import os
import re
import secrets
import stat
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args, get_origin

import tomli_w
from pydantic import BaseModel, ValidationError

from finmodel.errors import Problem, ScenarioError
from finmodel.scenario.distributions import DIST_TAGS, Dist
from finmodel.scenario.fields import parse_path
from finmodel.scenario.model import Scenario, closest

__all__ = [
    "assumptions_dir",
    "dumps_scenario",
    "list_scenarios",
    "load_scenario",
    "loads_scenario",
    "write_text_atomic",
]

MAX_EXTENDS_DEPTH = 8


def assumptions_dir() -> Path:
    """Folder of the preset TOML files (``$FINMODEL_ASSUMPTIONS`` overrides)."""
    env = os.environ.get("FINMODEL_ASSUMPTIONS")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent.parent
    packaged = here / "_assumptions"
    return packaged if packaged.is_dir() else here.parent / "assumptions"


def list_scenarios() -> list[str]:
    """Names of the shipped presets, sorted."""
    return sorted(p.stem for p in assumptions_dir().glob("*.toml"))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(Problem("", None, "file not found"), str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(Problem("", None, f"cannot read: {exc}"), str(path)) from None
    return _parse_toml(text, str(path))


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    text = text.removeprefix("\ufeff")  # a byte-order mark some editors write
    if not text.strip():
        raise ScenarioError(Problem("", None, 'the file is empty: a scenario needs at least '
                                    '\'extends = "base"\' or a list of factories'), source)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = f"malformed TOML: {exc}"
        found = re.search(r"line (\d+)", str(exc))
        lines = text.splitlines()
        if found and 0 < int(found.group(1)) <= len(lines):
            msg += f": {lines[int(found.group(1)) - 1].strip()!r}"
        raise ScenarioError(Problem("", None, msg), source=source) from None


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep merge of tables; lists and values in ``override`` replace those in ``base``."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and "dist" not in value:
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _resolve_extends(
    data: dict[str, Any], source: str, base_dir: Path | None = None, depth: int = 0,
    presets_only: bool = False,
) -> dict[str, Any]:
    """Merge ``data`` over the scenario it ``extends``: a preset, or (unless ``presets_only``) a
    path relative to ``base_dir``. With ``presets_only`` nothing but a shipped preset is read."""
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if depth >= MAX_EXTENDS_DEPTH:
        raise ScenarioError(Problem("extends", parent, "extends chain too deep (a cycle?)"), source)
    if not isinstance(parent, str):
        raise ScenarioError(Problem("extends", parent, "must be a preset name or a path"), source)
    if presets_only and parent not in (names := list_scenarios()):
        raise ScenarioError(Problem(
            "extends", parent, f"not a shipped preset{closest(parent, names)}; an uploaded or string "
            f"scenario may extend only a preset, never a file: {', '.join(names)}"), source)
    try:
        parent_data = _locate_and_read(parent, base_dir=base_dir)
    except ScenarioError as exc:
        problems = [Problem("extends", parent, p.message) for p in exc.problems]
        raise ScenarioError(problems, source) from None
    parent_dir = (base_dir / parent).parent if base_dir and parent.endswith(".toml") else base_dir
    parent_data = _resolve_extends(parent_data, parent, parent_dir, depth + 1, presets_only)
    return _merge(parent_data, data)


def _locate_and_read(name_or_path: str, base_dir: Path | None) -> dict[str, Any]:
    """A ``.toml`` file (relative to ``base_dir`` if not found as given) or a shipped preset by
    name; nothing else is read, so a name can never open another file on this machine."""
    if name_or_path.endswith(".toml"):
        path = Path(name_or_path)
        if base_dir is not None and not path.is_absolute() and not path.exists():
            path = base_dir / path
        if path.is_dir():
            raise ScenarioError(Problem("", None, "is a folder; give a .toml file"), str(path))
        return _read_toml(path)
    names = list_scenarios()
    if name_or_path not in names:
        raise ScenarioError(Problem("", None,
                                    f"no such preset{closest(name_or_path, names)}; a scenario file "
                                    f"must end in .toml; presets: {', '.join(names)}"), name_or_path)
    return _read_toml(assumptions_dir() / f"{name_or_path}.toml")


def _expand_factories(data: dict[str, Any], source: str) -> dict[str, Any]:
    """Apply ``factory_defaults`` to every factory and ``factory_updates`` by factory name."""
    defaults = data.pop("factory_defaults", {})
    updates = data.pop("factory_updates", {})
    factories = data.get("factories")
    if not isinstance(factories, list) or not isinstance(defaults, dict):
        return data
    factories = [_merge(defaults, f) if isinstance(f, dict) else f for f in factories]
    names = [f.get("name") for f in factories if isinstance(f, dict)]
    problems = []
    for name, change in (updates.items() if isinstance(updates, dict) else []):
        if name not in names:
            problems.append(Problem(f"factory_updates.{name}", change,
                                    f"no factory named {name!r}{closest(name, names)}"))
            continue
        i = names.index(name)
        factories[i] = _merge(factories[i], change)
    if problems:
        raise ScenarioError(problems, source)
    data["factories"] = factories
    return data


def _prepare(data: dict[str, Any], source: str, base_dir: Path | None = None,
             presets_only: bool = False) -> dict[str, Any]:
    return _expand_factories(_resolve_extends(data, source, base_dir, presets_only=presets_only), source)


def load_scenario(name_or_path: str | os.PathLike[str]) -> Scenario:
    """A preset name from ``assumptions/`` (e.g. ``"base"``) or a path to a ``.toml`` file.

    A file may ``extends = "base"`` (a preset or a path) and override only what differs;
    ``[factory_defaults]`` applies to every factory, ``[factory_updates.NAME]`` to one.
    """
    source = str(name_or_path)
    data = _locate_and_read(source, base_dir=None)
    base_dir = Path(source).parent if source.endswith(".toml") else None
    return validate_data(_prepare(data, source, base_dir), source)


def loads_scenario(text: str, source: str = "<string>", *, trusted: bool = False) -> Scenario:
    """Scenario from TOML text, e.g. an upload or a string from a database.

    Text is untrusted by default: its ``extends`` may name only a shipped preset, and no other
    file is read (so neither a path nor an error message can disclose a file on this machine).
    ``trusted=True`` also lets ``extends`` name a ``.toml`` path (relative to the working
    folder), as ``load_scenario`` does for a file."""
    return validate_data(_prepare(_parse_toml(text, source), source, presets_only=not trusted), source)


def validate_data(data: dict[str, Any], source: str | None = None) -> Scenario:
    """Validate a plain dict into a Scenario, or raise ScenarioError listing every problem."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_problems_from(exc), source) from None


# -- error translation -------------------------------------------------------------------------


_DIST_CLASSES = {cls.model_fields["dist"].default: cls for cls in get_args(get_args(Dist)[0])}


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class whose fields are valid at ``loc`` (for 'did you mean' hints)."""
    model: Any = Scenario
    for step in loc:
        if isinstance(step, int):
            continue
        if model is None or not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        if step in DIST_TAGS:
            model = _DIST_CLASSES.get(step)
            continue
        info = model.model_fields.get(step)
        if info is None:
            return None
        model = _model_type(info.annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _model_type(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_type(arg)
        if found is not None and found is not type(None):
            return found
    if get_origin(annotation) is list:
        return _model_type(get_args(annotation)[0])
    return None


def _loc_to_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for step in loc:
        if isinstance(step, int):
            out += f"[{step}]"
        elif step in DIST_TAGS or str(step).startswith("function-"):
            continue  # discriminator tags and validator wrappers are not user-visible fields
        else:
            out += f".{step}" if out else str(step)
    return out


_BOUND_WORDS = {
    "greater_than": ">",
    "greater_than_equal": ">=",
    "less_than": "<",
    "less_than_equal": "<=",
}


def _problems_from(exc: ValidationError) -> list[Problem]:
    problems: list[Problem] = []
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        kind = err.get("type", "")
        ctx = err.get("ctx") or {}
        if kind == "cross_checks":
            problems.extend(ctx["problems"])
            continue
        path = _loc_to_path(loc)
        value = err.get("input")
        msg = str(err.get("msg", "invalid"))
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if kind == "extra_forbidden":
            model = _model_at(loc[:-1])
            names = [n for n in model.model_fields if n != "sources"] if model else []
            msg = "unknown key" + closest(str(loc[-1]), names)
            if names:
                msg += f"; allowed: {', '.join(names)}"
        elif kind == "missing":
            value, msg = None, "required field is missing"
        elif kind == "union_tag_invalid":
            msg = f"unknown distribution {ctx.get('tag')!r}; allowed: {', '.join(DIST_TAGS)}"
            value = ctx.get("tag")
        elif kind == "union_tag_not_found":
            msg = "a distribution needs a 'dist' key (or give a plain number for a fixed value)"
        elif kind == "unknown_source_key":
            path, value = f"{path}.{ctx['key']}", ctx["key"]
        elif kind == "finite_number":
            msg = "must be a finite number (no NaN or inf)"
        elif kind in _BOUND_WORDS:
            msg = f"must be {_BOUND_WORDS[kind]} {next(iter(ctx.values()))}"
        problems.append(Problem(path, value, msg))
    return problems


# -- writing ----------------------------------------------------------------------------------


def _plain(obj: Any) -> Any:
    """Model dump ready for TOML: no None, fixed distributions as bare numbers, no empty sources."""
    if isinstance(obj, dict):
        if obj.get("dist") == "fixed":
            return obj["value"]
        return {k: _plain(v) for k, v in obj.items() if v is not None and not (k == "sources" and not v)}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    return obj


def dumps_scenario(sc: Scenario) -> str:
    return tomli_w.dumps(_plain(sc.model_dump(mode="python")))


def write_atomic(path: str | os.PathLike[str], write: Callable[[str], None]) -> Path:
    """Write ``path`` through ``write(temporary_path)`` in the same folder, then rename: a
    reader sees the old file or the new one, never a half-written one.

    Missing parent folders are created. A replaced file keeps its permissions; a new one gets
    the user's default (0666 less the umask). A target that cannot be written (a folder, a
    read-only or full disk, no permission) raises ``ScenarioError`` naming the path, and the old
    file is left as it was."""
    target = Path(path)
    try:
        if target.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a folder; give a file name")
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else None
        tmp = _new_temporary(target)
        try:
            write(str(tmp))
            if mode is not None:
                os.chmod(tmp, mode)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ScenarioError(Problem("path", str(path), f"cannot write: {exc.strerror or exc}")) from None
    return target


def _new_temporary(target: Path) -> Path:
    """A new empty file beside ``target``, created with mode 0666 less the umask (``mkstemp``
    would make it 0600 and the renamed result unreadable to colleagues on a shared folder)."""
    for _ in range(100):
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(target))


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write text to ``path`` atomically (see ``write_atomic``)."""
    return write_atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


# -- updates ----------------------------------------------------------------------------------


def apply_updates(sc: Scenario, updates: dict[str, Any]) -> Scenario:
    data = sc.model_dump(mode="python")
    problems: list[Problem] = []
    for path, value in updates.items():
        try:
            steps = parse_path(path)
            _set_path(data, steps, value, path)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            problems.append(Problem(path, value, str(exc).strip("'\"")))
    if problems:
        raise ScenarioError(problems, "with_updates")
    return validate_data(data, "with_updates")


def _set_path(data: dict[str, Any], steps: list[str | int], value: Any, path: str) -> None:
    """Set ``value`` at ``steps`` in a model dump; mark the owning section's source."""
    node: Any = data
    model: Any = Scenario
    section: dict[str, Any] | None = None
    field = ""
    for k, step in enumerate(steps):
        if isinstance(node, dict) and isinstance(node.get("sources"), dict) and isinstance(step, str):
            section, field = node, step
        if k < len(steps) - 1:
            node, model = _descend(node, model, step, steps[: k + 1])
    last = steps[-1]
    if isinstance(last, int) or not isinstance(node, dict):
        raise ValueError("a path must end in a field name")
    known = list(node) + list(getattr(model, "model_fields", {}))
    if last not in known:
        raise KeyError(f"no field {last!r} here{closest(last, list(node))}")
    node[last] = value
    if section is not None and field != "sources":
        old = section["sources"].get(field)
        section["sources"][field] = f"user override (was: {old})" if old else "user override"


def _descend(node: Any, model: Any, step: str | int, done: list[str | int]) -> tuple[Any, Any]:
    where = ".".join(str(s) for s in done)
    if isinstance(step, int):
        if not isinstance(node, list):
            raise TypeError(f"{where}: not a list")
        if not -len(node) <= step < len(node):
            raise IndexError(f"index {step} out of range: there are {len(node)} entries")
        return node[step], model
    if not isinstance(node, dict) or step not in node:
        names = list(node.keys()) if isinstance(node, dict) else []
        raise KeyError(f"no field {step!r} here{closest(step, names)}")
    sub_model = None
    if isinstance(model, type) and issubclass(model, BaseModel) and step in model.model_fields:
        sub_model = _model_type(model.model_fields[step].annotation)
    return node[step], sub_model
