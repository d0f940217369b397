"""Typed configs: one pydantic model per stage, loaded from YAML and validated once, here.

Every stage config derives from :class:`StrictModel`: unknown keys are errors, and each
field's docstring is its description (shown by ``--help`` and ``weam <stage> config``).

YAML files may compose: a mapping with the key ``_base_: other.yaml`` starts from that
file's mapping (path relative to the including file) and overrides it key by key. Command
line overrides are ``dotted.key=value`` strings whose value is parsed as YAML.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from weam.core.errors import ConfigError

BASE_KEY = "_base_"

ModelT = TypeVar("ModelT", bound=BaseModel)


class StrictModel(BaseModel):
    """Base of every config: unknown keys fail, field docstrings become descriptions."""

    model_config = ConfigDict(
        extra="forbid", use_attribute_docstrings=True, validate_assignment=True
    )


AFFECTS_RESULT = "affects_result"


def not_result(default: Any = ..., **kwargs: Any) -> Any:
    """A field that changes how or where a stage runs or logs, never what it computes (tracking,
    log paths and cadence, progress, cluster addresses). :func:`result_config` leaves it out, so
    changing it neither re-runs a finished stage nor anything downstream of it."""
    return Field(default, json_schema_extra={AFFECTS_RESULT: False}, **kwargs)


def affects_result(model_cls: type[BaseModel], name: str) -> bool:
    extra = model_cls.model_fields[name].json_schema_extra
    return not (isinstance(extra, dict) and extra.get(AFFECTS_RESULT) is False)


def result_config(config: BaseModel) -> dict[str, Any]:
    """The config as JSON without the fields marked :func:`not_result`, at any depth: what a stage's
    fingerprint hashes (the one skip rule, :func:`weam.core.manifest.check_stage`)."""

    def strip(model: BaseModel) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in type(model).model_fields:
            if not affects_result(type(model), name):
                continue
            value = getattr(model, name)
            out[name] = strip_value(value)
        return out

    def strip_value(value: Any) -> Any:
        if isinstance(value, BaseModel):
            return strip(value)
        if isinstance(value, (list, tuple)):
            return [strip_value(item) for item in value]
        if isinstance(value, dict):
            return {str(key): strip_value(item) for key, item in value.items()}
        return value

    import json

    from pydantic_core import to_jsonable_python

    return json.loads(json.dumps(to_jsonable_python(strip(config))))


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, resolving ``_base_`` includes recursively."""
    path = Path(path)
    return _resolve_bases(_load_mapping(path), path.parent, seen=(path.resolve(),))


def _load_mapping(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _resolve_bases(node: Any, folder: Path, seen: tuple[Path, ...]) -> Any:
    if isinstance(node, list):
        return [_resolve_bases(item, folder, seen) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _resolve_bases(value, folder, seen) for key, value in node.items()}
    base_ref = node.pop(BASE_KEY, None)
    if base_ref is None:
        return node
    base_path = (folder / str(base_ref)).resolve()
    if base_path in seen:
        raise ConfigError(f"{base_path}: {BASE_KEY} includes itself")
    base = _resolve_bases(_load_mapping(base_path), base_path.parent, seen + (base_path,))
    return deep_merge(base, node)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge ``override`` into a copy of ``base``; mappings merge, everything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides (value parsed as YAML) to a nested mapping."""
    data = dict(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. pretrain.lr=1e-4")
        dotted, raw = item.split("=", 1)
        keys = [k for k in dotted.strip().split(".") if k]
        if not keys:
            raise ConfigError(f"override {item!r}: empty key")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = data
        for key in keys[:-1]:
            child = node.get(key)
            child = dict(child) if isinstance(child, dict) else {}
            node[key] = child
            node = child
        node[keys[-1]] = value
    return data


def validate(model_cls: type[ModelT], data: dict[str, Any], source: str) -> ModelT:
    """Validate ``data`` as ``model_cls``; errors name the source, the key and what was expected."""
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, model_cls, source)) from None


def load_config(
    model_cls: type[ModelT],
    path: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> ModelT:
    """Load ``path`` (or defaults when None), apply overrides, validate once."""
    data = read_yaml(path) if path is not None else {}
    data = apply_overrides(data, overrides)
    source = str(path) if path is not None else "<defaults>"
    if overrides:
        source += " (with overrides " + ", ".join(overrides) + ")"
    return validate(model_cls, data, source)


def format_validation_error(exc: ValidationError, model_cls: type[BaseModel], source: str) -> str:
    lines = [f"{source}: invalid {model_cls.__name__}:"]
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"])
        if not key:
            lines.append(f"  {err['msg'].removeprefix('Value error, ')}")
        elif err["type"] == "extra_forbidden":
            known = _known_keys(model_cls, err["loc"][:-1])
            hint = difflib.get_close_matches(str(err["loc"][-1]), known, n=1)
            suggestion = f"; did you mean '{hint[0]}'?" if hint else ""
            lines.append(
                f"  key '{key}': unknown key{suggestion} (expected one of: {', '.join(sorted(known))})"
            )
        else:
            got = err.get("input")
            got_text = "" if isinstance(got, dict) else f" (got {got!r})"
            lines.append(f"  key '{key}': {err['msg']}{got_text}")
    return "\n".join(lines)


def _known_keys(model_cls: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the (nested) model at ``loc``; best effort through lists and dicts."""
    current: Any = model_cls
    for part in loc:
        if isinstance(part, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            current = _inner_model(current)
            if isinstance(part, int):
                continue
        field = current.model_fields.get(str(part)) if isinstance(current, type) else None
        if field is None:
            current = _inner_model(current)
            continue
        current = _inner_model(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if isinstance(found, type) and issubclass(found, BaseModel):
            return found
    return annotation


def dump_config(config: BaseModel) -> str:
    """The resolved config as YAML (what manifests and MLflow record), passwords of URIs masked
    (``tracking.uri: http://user:***@host``; the credentials stay in the environment)."""
    from weam.core.secrets import redact

    return redact(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True))


def describe_fields(model_cls: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted key, default, description) rows for ``--help``-style listings."""
    rows = []
    for name, field in model_cls.model_fields.items():
        inner = _inner_model(field.annotation)
        key = f"{prefix}{name}"
        if isinstance(inner, type) and issubclass(inner, BaseModel) and not field.is_required():
            rows.extend(describe_fields(inner, prefix=f"{key}."))
            continue
        default = "required" if field.is_required() else repr(field.get_default(call_default_factory=True))
        rows.append((key, default, (field.description or "").strip()))
    return rows
