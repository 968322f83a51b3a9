"""A YAML document with the line of every key, and the checks every format reader shares.

Errors name file, line, SLO and field (`payments.yaml:12: SLO 'availability':
slos[0].objective: must be above 0 and below 100, got 100`). Unknown fields are read as
Sloth reads them: ignored, but never silently: each is one warning line naming the field and
the file; in strict mode each is an error.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from slo.errors import SpecError
from slo.model import RESERVED_LABELS, WINDOW

NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$")
LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
METRIC = re.compile(r"^[A-Za-z_:][A-Za-z0-9_:]*$")
ALERT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

FieldPath = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """YAML 1.1 without timestamps: `2024-01-01` stays the text it is (as in Sloth's Go YAML),
    and a date-like value that is no date (`2024-13-01`) is not an error."""


def _timestamp_as_text(loader: _Loader, node: yaml.Node) -> str:
    assert isinstance(node, yaml.ScalarNode)
    return str(loader.construct_scalar(node))


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)


@dataclass
class ReadContext:
    """What one load shares across documents: strictness and the warnings found so far."""

    strict: bool = False
    warnings: list[str] = field(default_factory=list)


@dataclass
class Document:
    """One YAML document with the line of every key, so errors can point at the input."""

    file: str
    data: Any
    lines: dict[FieldPath, int]
    context: ReadContext = field(default_factory=ReadContext)

    def line(self, path: FieldPath) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())

    def error(self, path: FieldPath, message: str, slo: str | None = None) -> SpecError:
        return SpecError(message, file=self.file, line=self.line(path), slo=slo, field=dotted(path))

    def where(self, path: FieldPath) -> str:
        line = self.line(path)
        return f"{self.file}:{line}" if line else self.file

    def unknown(self, path: FieldPath, slo: str | None = None) -> None:
        """An unknown field: an error in strict mode, else one warning line."""
        error = self.error(path, "unknown field", slo)
        if self.context.strict:
            raise error
        self.context.warnings.append(f"warning: {error} (ignored; --strict makes it an error)")


def dotted(path: FieldPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def read_documents(path: Path, context: ReadContext) -> list[Document]:
    file = str(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror}", file=file) from None
    except UnicodeDecodeError:
        raise SpecError("not a text file", file=file) from None
    loader = _Loader(text)
    documents = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            lines: dict[FieldPath, int] = {(): node.start_mark.line + 1}
            _index_lines(node, (), lines)
            documents.append(Document(file, loader.construct_document(node), lines, context))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"invalid YAML: {problem}", file=file, line=mark.line + 1 if mark else None) from None
    finally:
        loader.dispose()
    if not documents:
        raise SpecError("no SLO spec in the file", file=file, line=1)
    return documents


def _index_lines(node: yaml.Node, path: FieldPath, lines: dict[FieldPath, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, str(key.value))
            lines[child] = key.start_mark.line + 1
            _index_lines(value, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _index_lines(item, (*path, index), lines)


def fields(
    doc: Document,
    path: FieldPath,
    raw: Any,
    *,
    required: set[str] | frozenset[str] = frozenset(),
    optional: set[str] | frozenset[str] = frozenset(),
    slo: str | None = None,
) -> None:
    """`raw` is a mapping with every required field; any other field is unknown (warned)."""
    if not isinstance(raw, dict):
        raise doc.error(path, "must be a mapping", slo)
    for key in raw:
        if key not in required and key not in optional:
            doc.unknown((*path, str(key)), slo)
    for key in sorted(required):
        if raw.get(key) in (None, ""):
            raise doc.error((*path, key), "is required", slo)


def one_of(doc: Document, path: FieldPath, raw: Mapping[str, Any], names: tuple[str, ...], slo: str | None) -> str:
    """The one key of `names` present in `raw`, or an error naming them all."""
    present = [name for name in names if raw.get(name) is not None]
    if len(present) != 1:
        listed = ", ".join(names[:-1]) + f" or {names[-1]}"
        raise doc.error(path, f"needs exactly one of {listed}", slo)
    return present[0]


def name(doc: Document, path: FieldPath, raw: Any, slo: str | None = None) -> str:
    if not isinstance(raw, str) or not NAME.match(raw):
        raise doc.error(path, "must be a name of letters, digits, '-', '_' or '.'", slo)
    return raw


def string(doc: Document, path: FieldPath, raw: Any, slo: str | None, *, allow_empty: bool = False) -> str:
    if not isinstance(raw, str) or (not allow_empty and not raw.strip()):
        raise doc.error(path, "must be a string", slo)
    return raw


def boolean(doc: Document, path: FieldPath, raw: Any, slo: str | None) -> bool:
    if not isinstance(raw, bool):
        raise doc.error(path, "must be true or false", slo)
    return raw


def number(doc: Document, path: FieldPath, raw: Any, slo: str | None, *, text: bool = False) -> Decimal:
    """A finite number, kept exact (`Decimal(repr(x))`); with `text`, also a numeric string ("99.9")."""
    if text and isinstance(raw, str):
        try:
            value = Decimal(raw.strip())
        except ArithmeticError:
            raise doc.error(path, f"must be a number, got {raw!r}", slo) from None
    elif isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise doc.error(path, "must be a number", slo)
    else:
        value = Decimal(repr(raw))
    if not value.is_finite():
        raise doc.error(path, "must be a finite number", slo)
    return value


def objective(doc: Document, path: FieldPath, raw: Any, slo: str, *, scale: int, text: bool = False) -> Decimal:
    """An objective in percent: above 0 and below 100 (`scale` 100 reads a ratio such as 0.999)."""
    if isinstance(raw, float) and not math.isfinite(raw):
        raise doc.error(path, f"must be above 0 and below {1 if scale == 100 else 100}, got {raw}", slo)
    percent = number(doc, path, raw, slo, text=text) * scale
    if not 0 < percent < 100:
        bounds = "0 and below 1" if scale == 100 else "0 and below 100"
        raise doc.error(path, f"must be above {bounds}, got {raw}", slo)
    return percent.normalize()


def query(doc: Document, path: FieldPath, raw: Any, slo: str | None) -> str:
    text = string(doc, path, raw, slo).strip()
    if not WINDOW.search(text):
        raise doc.error(path, "has no {{.window}} placeholder", slo)
    return text


def labels(doc: Document, path: FieldPath, raw: Any, slo: str | None = None) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise doc.error(path, "must be a mapping of label names to values", slo)
    found = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not LABEL.match(key) or key.startswith("__"):
            raise doc.error((*path, str(key)), "is not a valid label name", slo)
        if key in RESERVED_LABELS:
            raise doc.error((*path, key), "is set by the generator", slo)
        if isinstance(value, bool | dict | list) or value is None:
            raise doc.error((*path, key), "label values must be strings or numbers", slo)
        found[key] = str(value)
    return found


def annotation_map(doc: Document, path: FieldPath, raw: Any, slo: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise doc.error(path, "must be a mapping of names to strings", slo)
    for key, value in raw.items():
        # Prometheus refuses a rule file with an annotation name that is not a label name.
        if not isinstance(key, str) or not LABEL.match(key):
            raise doc.error((*path, str(key)), "is not a valid annotation name", slo)
        if not isinstance(value, str):
            raise doc.error((*path, key), "must be a string", slo)
    return dict(raw)


def alert_name(doc: Document, path: FieldPath, raw: Any, slo: str) -> str:
    if not isinstance(raw, str) or not ALERT.match(raw):
        raise doc.error(path, "must be an alert name ([A-Za-z_][A-Za-z0-9_]*)", slo)
    return raw


def camel(*parts: str) -> str:
    """`orders`, `availability-fast` -> `OrdersAvailabilityFast`: a valid alert name from names."""
    words = [word for part in parts for word in re.split(r"[^A-Za-z0-9]+", part) if word]
    text = "".join(word[:1].upper() + word[1:] for word in words)
    return text if text[:1].isalpha() else f"SLO{text}"
