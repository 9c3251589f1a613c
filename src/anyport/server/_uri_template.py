"""RFC 6570 URI templates: matching a concrete URI against a template and expanding one.

Supported expressions: ``{var}``, ``{+var}``, ``{#var}``, ``{.var}``, ``{/var}``, ``{;var}``,
``{?a,b}`` and ``{&a,b}``, with comma-separated variable lists and the ``*`` explode modifier
on path segments (``{/path*}``). Query expressions match in any order and may be absent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote

__all__ = ["UriTemplate"]

_EXPR = re.compile(r"\{([+#./;?&]?)([^{}]+)\}")
_VARNAME = re.compile(r"^[A-Za-z0-9_.%]+$")


@dataclass(frozen=True, slots=True)
class _Var:
    name: str
    explode: bool


def _parse_vars(spec: str) -> list[_Var]:
    out = []
    for raw in spec.split(","):
        raw = raw.strip()
        explode = raw.endswith("*")
        name = raw.rstrip("*").split(":", 1)[0]
        if not _VARNAME.match(name):
            raise ValueError(f"invalid URI template variable: {raw!r}")
        out.append(_Var(name, explode))
    return out


class UriTemplate:
    """A compiled template. ``match(uri)`` returns the variables or None."""

    __slots__ = ("_query", "_regex", "_slots", "template", "variables")

    def __init__(self, template: str) -> None:
        self.template = template
        pattern = ["^"]
        self._slots: list[tuple[str, _Var]] = []
        self._query: list[_Var] = []
        names: list[str] = []
        pos = 0
        for m in _EXPR.finditer(template):
            pattern.append(re.escape(template[pos : m.start()]))
            pos = m.end()
            op, spec = m.group(1), m.group(2)
            vars_ = _parse_vars(spec)
            names.extend(v.name for v in vars_)
            if op in ("?", "&"):
                self._query.extend(vars_)
                pattern.append(r"(?:[?&](?P<__query>.*))?" if not any(s == "__query" for s, _ in self._slots) else "")
                self._slots.append(("__query", vars_[0]))
                continue
            pieces = []
            for i, v in enumerate(vars_):
                group = f"g{len(self._slots)}"
                self._slots.append((group, v))
                if op == "":
                    sep, body = ("," if i else ""), r"[^/?#,]*" if not v.explode else r"[^/?#]*"
                elif op in ("+", "#"):
                    sep, body = ("," if i else ("#" if op == "#" else "")), r".*?"
                elif op == "/":
                    sep, body = "/", (r"[^?#]*?" if v.explode else r"[^/?#]*")
                elif op == ".":
                    sep, body = ".", r"[^/?#.]*"
                else:  # ";"
                    sep, body = ";", re.escape(v.name) + r"=?[^/?#;]*"
                pieces.append(f"(?:{re.escape(sep)}(?P<{group}>{body}))" + ("?" if op in ("/", ".", ";", "#") else ""))
            pattern.append("".join(pieces))
        pattern.append(re.escape(template[pos:]))
        pattern.append("$")
        self._regex = re.compile("".join(pattern), re.DOTALL)
        self.variables = tuple(dict.fromkeys(names))

    @property
    def is_template(self) -> bool:
        return bool(self.variables)

    def match(self, uri: str) -> dict[str, str] | None:
        m = self._regex.match(uri)
        if m is None:
            return None
        out: dict[str, str] = {}
        for group, var in self._slots:
            if group == "__query":
                continue
            value = m.group(group)
            if value is None:
                continue
            if var.explode and "/" in value:
                value = value.replace("/", ",")
            if value.startswith(var.name + "=") and group and self.template.find("{;") >= 0:
                value = value[len(var.name) + 1 :]
            out[var.name] = unquote(value)
        if self._query:
            query = m.groupdict().get("__query") or ""
            wanted = {v.name for v in self._query}
            for key, value in parse_qsl(query, keep_blank_values=True):
                if key in wanted:
                    out[key] = value
        return out

    def expand(self, values: dict[str, str]) -> str:
        def repl(m: re.Match[str]) -> str:
            op, spec = m.group(1), m.group(2)
            vars_ = [v for v in _parse_vars(spec) if v.name in values]
            if not vars_:
                return ""
            safe = ":/?#[]@!$&'()*+,;=" if op in ("+", "#") else ""
            vals = [quote(str(values[v.name]), safe=safe) for v in vars_]
            if op in ("?", "&"):
                return op + "&".join(f"{v.name}={x}" for v, x in zip(vars_, vals, strict=True))
            if op == ";":
                return "".join(f";{v.name}={x}" for v, x in zip(vars_, vals, strict=True))
            prefix = {"": "", "+": "", "#": "#", ".": ".", "/": "/"}[op]
            joiner = {"": ",", "+": ",", "#": ",", ".": ".", "/": "/"}[op]
            return prefix + joiner.join(vals)

        return _EXPR.sub(repl, self.template)
