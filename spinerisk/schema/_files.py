"""Schemas as data: plain dicts, TOML / YAML / JSON files, and their checks.

A schema file declares fields, row rules, derived features and lookup tables; nothing in
it can execute code (rules and derived features are expressions of
:mod:`spinerisk.schema._expr`, evaluated by spinerisk, never by Python's ``eval``).
:func:`schema_from_dict` and :func:`schema_to_dict` are exact inverses, so a bundle can
store a schema and give back an equal one.

A TOML schema file::

    name = "glow500"
    version = "1"

    [[fields]]
    name = "sub_id"
    dtype = "string"
    role = "id"
    description = "Study identifier."
    nullable = false
    required = true
    unique = true

    [[fields]]
    name = "age"
    dtype = "float"
    unit = "years"
    min = 55
    max = 90
    description = "Age at enrolment."

    [[rules]]
    name = "bmi_plausible"
    expr = "bmi < 70"
    message = "bmi above 70 kg/m2"
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spinerisk.schema._spec import DTYPES, ROLES, DerivedFeature, FieldSpec, RowRule, Schema

__all__ = [
    "FileProblem",
    "SchemaFileError",
    "check_schema_file",
    "dump_toml",
    "load_schema",
    "read_declaration",
    "schema_from_dict",
    "schema_to_dict",
]

_FIELD_KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "dtype": str,
    "description": str,
    "unit": str,
    "min": (int, float),
    "max": (int, float),
    "categories": list,
    "nullable": bool,
    "required": bool,
    "role": str,
    "group": str,
    "pattern": str,
    "unique": bool,
    "coerce": bool,
    "source": str,
    "missing_values": list,
    "generated": bool,
}
_RULE_KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "expr": str,
    "message": str,
    "columns": list,
    "optional": list,
}
_DERIVED_KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "expr": str,
    "description": str,
    "dtype": str,
    "categories": list,
    "unit": str,
    "needs": str,
    "replaces": list,
    "field": str,
}
_TOP_KEYS = ("name", "version", "description", "fields", "rules", "derived", "tables", "subgroups")
_MAX_FILE_BYTES = 4 << 20


@dataclass(frozen=True)
class FileProblem:
    """One mistake in a schema or endpoint declaration: where, which key, what is wrong."""

    key: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}, " if self.line else ""
        return f"{where}{self.key}: {self.message}"


class SchemaFileError(ValueError):
    """A schema or endpoint declaration with mistakes; ``.problems`` lists them all."""

    def __init__(self, source: str, problems: Sequence[FileProblem]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        n = len(self.problems)
        super().__init__(f"{n} problem{'s' if n != 1 else ''} in {source}:\n{lines}")


# -- reading files ----------------------------------------------------------------------------
def read_declaration(path: str | os.PathLike[str]) -> tuple[dict[str, Any], str]:
    """Read a TOML, YAML or JSON declaration into a dict; return it and its text.

    Raises
    ------
    SchemaFileError
        If the file cannot be read or parsed (with the line where the parser stopped).
    """
    p = Path(path)
    name = str(path)
    try:
        size = p.stat().st_size
        if size > _MAX_FILE_BYTES:
            raise SchemaFileError(
                name, [FileProblem("(file)", f"is {size} bytes; at most {_MAX_FILE_BYTES}")]
            )
        text = p.read_text(encoding="utf-8")
    except SchemaFileError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaFileError(name, [FileProblem("(file)", f"cannot be read: {exc}")]) from None
    suffix = p.suffix.lower()
    try:
        if suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            data = _load_yaml(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise SchemaFileError(
                name,
                [FileProblem("(file)", f"has suffix {suffix!r}; expected .toml, .yaml or .json")],
            )
    except SchemaFileError:
        raise
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or _line_of_message(str(exc))
        raise SchemaFileError(name, [FileProblem("(syntax)", str(exc), line)]) from None
    except json.JSONDecodeError as exc:
        raise SchemaFileError(name, [FileProblem("(syntax)", exc.msg, exc.lineno)]) from None
    except ValueError as exc:  # YAML errors, re-raised as ValueError
        raise SchemaFileError(name, [FileProblem("(syntax)", str(exc))]) from None
    if not isinstance(data, dict):
        raise SchemaFileError(name, [FileProblem("(file)", "must hold a table of keys")])
    return data, text


def _line_of_message(message: str) -> int | None:
    m = re.search(r"line (\d+)", message)
    return int(m.group(1)) if m else None


def _load_yaml(text: str) -> Any:
    try:
        import yaml
    except ImportError:  # pragma: no cover - pyyaml is in the [yaml] extra
        raise ValueError('reading YAML needs pyyaml: pip install "spinerisk[yaml]"') from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from None


class _Locator:
    """Find the line of a key in a TOML file's text (best effort; None when unsure)."""

    def __init__(self, text: str | None) -> None:
        self.lines = (text or "").splitlines()

    def line(self, key: str) -> int | None:
        if not self.lines:
            return None
        m = re.fullmatch(r"(\w+)\[(\d+)\](?:\.(\w+))?", key)
        if m:
            return self._in_array(m.group(1), int(m.group(2)), m.group(3))
        if key.startswith("tables."):
            header = re.compile(rf"^\s*\[\s*{re.escape(key)}\s*\]")
            return next((i + 1 for i, t in enumerate(self.lines) if header.match(t)), None)
        return self._top(key)

    def _top(self, key: str) -> int | None:
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for i, text in enumerate(self.lines):
            if text.lstrip().startswith("["):
                return None
            if pattern.match(text):
                return i + 1
        return None

    def _in_array(self, array: str, index: int, key: str | None) -> int | None:
        header = re.compile(rf"^\s*\[\[\s*{re.escape(array)}\s*\]\]")
        starts = [i for i, t in enumerate(self.lines) if header.match(t)]
        if index >= len(starts):
            return None
        start = starts[index]
        if key is None:
            return start + 1
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for i in range(start + 1, len(self.lines)):
            if self.lines[i].lstrip().startswith("["):
                break
            if pattern.match(self.lines[i]):
                return i + 1
        return start + 1


# -- dict -> schema ---------------------------------------------------------------------------
class Collector:
    def __init__(self, text: str | None) -> None:
        self.problems: list[FileProblem] = []
        self.locate = _Locator(text)

    def add(self, key: str, message: str) -> None:
        self.problems.append(FileProblem(key, message, self.locate.line(key)))


def check_keys(
    item: Any, allowed: Mapping[str, Any], where: str, out: Collector, required: Sequence[str]
) -> bool:
    if not isinstance(item, dict):
        out.add(where, f"must be a table of keys; got {type(item).__name__}")
        return False
    ok = True
    for key, value in item.items():
        if key not in allowed:
            close = _closest(key, allowed)
            hint = f" (did you mean {close!r}?)" if close else ""
            out.add(f"{where}.{key}", f"is not a known key{hint}; known: {', '.join(allowed)}")
            ok = False
            continue
        kind = allowed[key]
        if value is None:
            continue
        if isinstance(value, bool) and kind in ((int, float), list):
            out.add(f"{where}.{key}", f"must be {_kind_name(kind)}; got {value!r}")
            ok = False
        elif not isinstance(value, kind):
            out.add(f"{where}.{key}", f"must be {_kind_name(kind)}; got {value!r}")
            ok = False
    for key in required:
        if key not in item:
            out.add(f"{where}.{key}" if key != "name" else where, f"needs `{key}`")
            ok = False
    return ok


def _kind_name(kind: Any) -> str:
    names = {str: "text", bool: "true or false", list: "a list", (int, float): "a number"}
    return names.get(kind, str(kind))


def _closest(key: str, allowed: Mapping[str, Any]) -> str | None:
    import difflib

    match = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
    return match[0] if match else None


def _number(value: Any) -> float | None:
    if value is None:
        return None
    return float(value)


def _field_from(item: dict[str, Any], where: str, out: Collector) -> FieldSpec | None:
    if not check_keys(item, _FIELD_KEYS, where, out, ("name", "dtype")):
        return None
    if item["dtype"] not in DTYPES:
        out.add(f"{where}.dtype", f"{item['dtype']!r} is not one of {', '.join(DTYPES)}")
        return None
    role = item.get("role", "feature")
    if role not in ROLES:
        out.add(f"{where}.role", f"{role!r} is not one of {', '.join(ROLES)}")
        return None
    for bound in ("min", "max"):
        if bound in item and item[bound] is not None and not math.isfinite(float(item[bound])):
            out.add(f"{where}.{bound}", "must be a finite number")
            return None
    kwargs: dict[str, Any] = {
        "unit": item.get("unit", ""),
        "min": _number(item.get("min")),
        "max": _number(item.get("max")),
        "categories": None if item.get("categories") is None else tuple(item["categories"]),
        "nullable": item.get("nullable", True),
        "required": item.get("required", False),
        "role": role,
        "group": item.get("group", ""),
        "pattern": item.get("pattern"),
        "unique": item.get("unique", False),
        "coerce": item.get("coerce", True),
        "source": item.get("source", ""),
        "missing_values": tuple(item.get("missing_values") or ()),
        "generated": item.get("generated", False),
    }
    try:
        return FieldSpec(item["name"], item["dtype"], item.get("description", ""), **kwargs)
    except (ValueError, TypeError, re.error) as exc:
        out.add(where, _strip(str(exc)))
        return None


def _rule_from(item: dict[str, Any], where: str, out: Collector) -> RowRule | None:
    if not check_keys(item, _RULE_KEYS, where, out, ("name", "expr", "message")):
        return None
    try:
        return RowRule(
            item["name"],
            tuple(item.get("columns") or ()),
            expr=item["expr"],
            message=item["message"],
            optional=tuple(item.get("optional") or ()),
        )
    except ValueError as exc:
        out.add(f"{where}.expr", _strip(str(exc)))
        return None


def _derived_from(item: dict[str, Any], where: str, out: Collector) -> DerivedFeature | None:
    if not check_keys(item, _DERIVED_KEYS, where, out, ("name", "expr")):
        return None
    try:
        return DerivedFeature(
            item["name"],
            item["expr"],
            item.get("description", ""),
            dtype=item.get("dtype", "float"),
            categories=None if item.get("categories") is None else tuple(item["categories"]),
            unit=item.get("unit", ""),
            needs=item.get("needs", "all"),
            replaces=tuple(item.get("replaces") or ()),
            field=item.get("field"),
        )
    except ValueError as exc:
        out.add(f"{where}.expr", _strip(str(exc)))
        return None


def _strip(message: str) -> str:
    return message.rstrip(".")


def _array(data: Mapping[str, Any], key: str, out: Collector) -> list[Any]:
    value = data.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        out.add(key, f"must be a list of tables ([[{key}]] in TOML)")
        return []
    return value


def _schema_problems(data: Any, text: str | None) -> tuple[Schema | None, list[FileProblem]]:
    out = Collector(text)
    if not isinstance(data, Mapping):
        out.add("(file)", "must hold a table of keys")
        return None, out.problems
    name, version = _top_level(data, out)
    fields = _fields_of(data, out)
    rules = [_rule_from(r, f"rules[{i}]", out) for i, r in enumerate(_array(data, "rules", out))]
    derived = [
        _derived_from(d, f"derived[{i}]", out) for i, d in enumerate(_array(data, "derived", out))
    ]
    subgroups = data.get("subgroups")
    if subgroups is not None and (
        not isinstance(subgroups, list) or any(not isinstance(g, str) for g in subgroups)
    ):
        out.add("subgroups", "must be a list of field or derived-feature names")
        subgroups = None
    tables = data.get("tables", {}) or {}
    if not isinstance(tables, Mapping) or any(not isinstance(t, Mapping) for t in tables.values()):
        out.add("tables", "must be tables of code = value ([tables.<name>] in TOML)")
        tables = {}
    if out.problems:
        return None, out.problems
    # every part parsed (no None left): names, kinds and references are checked next
    base = Schema(
        tuple(f for f in fields if f), name=str(name), version=str(version), tables=tables
    )
    kept_derived, kept_rules = _checked_parts(
        base,
        tables,
        [d for d in derived if d is not None],
        [r for r in rules if r is not None],
        out,
    )
    if out.problems:
        return None, out.problems
    try:
        schema = Schema(
            base.fields,
            tuple(kept_rules),
            name=base.name,
            version=base.version,
            derived=tuple(kept_derived),
            tables=tables,
            subgroups=None if subgroups is None else tuple(subgroups),
        )
    except ValueError as exc:
        out.add("subgroups", _after_colon(str(exc)))
        return None, out.problems
    return schema, []


def _top_level(data: Mapping[str, Any], out: Collector) -> tuple[Any, Any]:
    """The schema's name and version; unknown top-level keys and bad values go to ``out``."""
    for key in data:
        if key not in _TOP_KEYS:
            close = _closest(str(key), dict.fromkeys(_TOP_KEYS))
            hint = f" (did you mean {close!r}?)" if close else ""
            out.add(str(key), f"is not a known key{hint}; known: {', '.join(_TOP_KEYS)}")
    name = data.get("name", "custom")
    if not isinstance(name, str) or not name:
        out.add("name", "must be non-empty text")
    version = data.get("version", "1")
    if not isinstance(version, str | int):
        out.add("version", "must be text")
    return name, version


def _fields_of(data: Mapping[str, Any], out: Collector) -> list[FieldSpec | None]:
    """The declared fields (None where one is invalid); a missing field list, a name
    declared twice and anything but exactly one id field go to ``out``."""
    fields = [
        _field_from(f, f"fields[{i}]", out) for i, f in enumerate(_array(data, "fields", out))
    ]
    if not fields and not out.problems:
        out.add("fields", "a schema needs at least one field")
    seen: dict[str, int] = {}
    for i, f in enumerate(fields):
        if f is None:
            continue
        if f.name in seen:
            out.add(
                f"fields[{i}].name", f"{f.name!r} is declared twice (also fields[{seen[f.name]}])"
            )
        seen.setdefault(f.name, i)
    ids = [f.name for f in fields if f is not None and f.role == "id"]
    if fields and all(f is not None for f in fields) and len(ids) != 1:
        out.add("fields", f'exactly one field needs role = "id"; got {ids or "none"}')
    return fields


def _checked_parts(
    base: Schema,
    tables: Mapping[str, Any],
    derived: list[DerivedFeature],
    rules: list[RowRule],
    out: Collector,
) -> tuple[list[DerivedFeature], list[RowRule]]:
    """The derived features and rules that build on ``base`` with lookup ``tables`` (each
    after those kept before it); the error of each one that does not goes to ``out``."""
    kept_derived: list[DerivedFeature] = []
    for i, d in enumerate(derived):
        try:
            Schema(base.fields, derived=(*kept_derived, d), tables=tables, name=base.name)
            kept_derived.append(d)
        except ValueError as exc:
            out.add(f"derived[{i}].expr", _after_colon(str(exc)))
    kept_rules: list[RowRule] = []
    for i, r in enumerate(rules):
        try:
            Schema(base.fields, (r,), derived=tuple(kept_derived), tables=tables, name=base.name)
            kept_rules.append(r)
        except ValueError as exc:
            out.add(f"rules[{i}].expr", _after_colon(str(exc)))
    return kept_derived, kept_rules


def _after_colon(message: str) -> str:
    """The problem without the schema and rule names (the key already says where)."""
    message = re.sub(r"^Schema '[^']*': (rule|derived) '[^']*'(: )?\s*", "", message)
    return _strip(message)


def schema_from_dict(data: Mapping[str, Any], *, source: str = "the schema") -> Schema:
    """Build a :class:`Schema` from its plain-data form (see :func:`schema_to_dict`).

    Raises
    ------
    SchemaFileError
        Listing every problem, each with its key (``fields[3].dtype``).
    """
    schema, problems = _schema_problems(data, None)
    if problems or schema is None:
        raise SchemaFileError(source, problems)
    return schema


def schema_to_dict(schema: Schema) -> dict[str, Any]:
    """The plain-data form of a schema (only what differs from the defaults is written).

    Raises
    ------
    ValueError
        If a row rule is Python code (``check=``): declare it as an expression.

    Examples
    --------
    >>> from spinerisk.schema import SPINE_SCHEMA, schema_from_dict, schema_to_dict
    >>> schema_from_dict(schema_to_dict(SPINE_SCHEMA)) == SPINE_SCHEMA
    True
    """
    code = [r.name for r in schema.rules if not r.declarative]
    if code:
        raise ValueError(
            f"Schema {schema.name!r} has row rule(s) {code} written as Python code, which "
            "cannot be stored as data. Declare them as expressions: RowRule(name, "
            'expr="...", message="...").'
        )
    defaults = FieldSpec("x", "float", "")
    fields = []
    for f in schema.fields:
        item: dict[str, Any] = {"name": f.name, "dtype": f.dtype}
        for key in _FIELD_KEYS:
            if key in ("name", "dtype"):
                continue
            value = getattr(f, key)
            if value == getattr(defaults, key):
                continue
            item[key] = list(value) if isinstance(value, tuple) else value
        fields.append(item)
    rules = []
    for r in schema.rules:
        rule: dict[str, Any] = {"name": r.name, "expr": r.expr, "message": r.message}
        if r._parsed is not None and tuple(r.columns) != r._parsed.field_order:
            rule["columns"] = list(r.columns)
        if r.optional:
            rule["optional"] = list(r.optional)
        rules.append(rule)
    derived = []
    plain = DerivedFeature("x", "1")
    for d in schema.derived:
        item = {"name": d.name, "expr": d.expr}
        for key in _DERIVED_KEYS:
            if key in ("name", "expr"):
                continue
            value = getattr(d, key)
            if value == getattr(plain, key):
                continue
            item[key] = list(value) if isinstance(value, tuple) else value
        derived.append(item)
    out: dict[str, Any] = {"name": schema.name, "version": schema.version, "fields": fields}
    if rules:
        out["rules"] = rules
    if derived:
        out["derived"] = derived
    if schema.tables:
        out["tables"] = schema.lookup_tables
    if schema.subgroups is not None:
        out["subgroups"] = list(schema.subgroups)
    return out


def load_schema(path: str | os.PathLike[str]) -> Schema:
    """Read a schema from a TOML, YAML or JSON file.

    Raises
    ------
    SchemaFileError
        Listing every mistake with its line (TOML) and key.
    """
    data, text = read_declaration(path)
    schema, problems = _schema_problems(data, text if str(path).endswith(".toml") else None)
    if problems or schema is None:
        raise SchemaFileError(str(path), problems)
    return schema


def check_schema_file(path: str | os.PathLike[str]) -> list[FileProblem]:
    """Every mistake in a schema file, with line and key (empty when it is correct)."""
    try:
        data, text = read_declaration(path)
    except SchemaFileError as exc:
        return exc.problems
    return _schema_problems(data, text if str(path).endswith(".toml") else None)[1]


def dump_toml(data: Mapping[str, Any]) -> str:
    """A declaration dict as TOML text (``None`` values are left out)."""
    import tomli_w

    return tomli_w.dumps(_drop_none(data), multiline_strings=False)


def _drop_none(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_drop_none(v) for v in value if v is not None]
    return value
