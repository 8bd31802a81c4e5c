"""A light XML element for XMPP stanzas.

`Element` keeps a local name, its namespace, attributes, and children that are either
elements or text. It is deliberately small (``__slots__``, no parent pointers) because one is
built for every stanza on the hot path. Namespaces are resolved by the parser, so
``el.xmlns`` is always the element's real namespace, whatever prefix the sender used.
"""

from __future__ import annotations

from collections.abc import Iterator

# str.replace is several times faster than str.translate with a mapping, and returns the
# string itself when there is nothing to replace (the common case on the hot path).


def escape_text(text: str) -> str:
    """Escape character data for inclusion in XML."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_attr(value: str) -> str:
    """Escape an attribute value (double- or single-quoted)."""
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&apos;")
    )


class Element:
    """An XML element: name, namespace, attributes (without ``xmlns``) and children."""

    __slots__ = ("attrs", "children", "name", "xmlns")

    def __init__(
        self,
        name: str,
        xmlns: str = "",
        attrs: dict[str, str] | None = None,
        children: list[Element | str] | None = None,
    ) -> None:
        self.name = name
        self.xmlns = xmlns
        self.attrs: dict[str, str] = attrs if attrs is not None else {}
        self.children: list[Element | str] = children if children is not None else []

    # -- reading -----------------------------------------------------------------------------
    def get(self, attr: str, default: str | None = None) -> str | None:
        """Return an attribute value."""
        return self.attrs.get(attr, default)

    def elements(self) -> Iterator[Element]:
        """Iterate over child elements, skipping text."""
        for child in self.children:
            if isinstance(child, Element):
                yield child

    def find(self, name: str, xmlns: str | None = None) -> Element | None:
        """The first child element with this name (and namespace, if given)."""
        for child in self.children:
            if (
                isinstance(child, Element)
                and child.name == name
                and (xmlns is None or child.xmlns == xmlns)
            ):
                return child
        return None

    def find_all(self, name: str, xmlns: str | None = None) -> list[Element]:
        """Every child element with this name (and namespace, if given)."""
        return [
            c
            for c in self.children
            if isinstance(c, Element) and c.name == name and (xmlns is None or c.xmlns == xmlns)
        ]

    def find_ns(self, xmlns: str) -> Element | None:
        """The first child element in a namespace, whatever its name."""
        for child in self.children:
            if isinstance(child, Element) and child.xmlns == xmlns:
                return child
        return None

    @property
    def text(self) -> str:
        """The concatenated character data directly inside this element."""
        return "".join(c for c in self.children if isinstance(c, str))

    def find_text(self, name: str, xmlns: str | None = None) -> str | None:
        """The text of the first matching child, or None when there is no such child."""
        child = self.find(name, xmlns)
        return None if child is None else child.text

    # -- building ----------------------------------------------------------------------------
    def append(self, child: Element | str) -> Element | str:
        """Add a child and return it."""
        self.children.append(child)
        return child

    def add(
        self,
        name: str,
        xmlns: str | None = None,
        attrs: dict[str, str] | None = None,
        text: str | None = None,
    ) -> Element:
        """Add a child element (inheriting this element's namespace by default) and return it."""
        child = Element(name, self.xmlns if xmlns is None else xmlns, attrs)
        if text is not None:
            child.children.append(text)
        self.children.append(child)
        return child

    def remove(self, child: Element) -> None:
        """Remove a child element (by identity)."""
        self.children = [c for c in self.children if c is not child]

    def copy(self) -> Element:
        """A deep copy."""
        return Element(
            self.name,
            self.xmlns,
            dict(self.attrs),
            [c.copy() if isinstance(c, Element) else c for c in self.children],
        )

    def shallow_copy(self) -> Element:
        """A copy sharing the children (safe as long as children are not mutated)."""
        return Element(self.name, self.xmlns, dict(self.attrs), list(self.children))

    # -- writing -----------------------------------------------------------------------------
    def to_string(self, parent_xmlns: str = "") -> str:
        """Serialize, declaring ``xmlns`` only where it differs from the parent's."""
        parts: list[str] = []
        _serialize(self, parent_xmlns, parts)
        return "".join(parts)

    def __str__(self) -> str:
        return self.to_string()

    def __repr__(self) -> str:
        return f"<Element {self.to_string()[:200]}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Element):
            return NotImplemented
        return (
            self.name == other.name
            and self.xmlns == other.xmlns
            and self.attrs == other.attrs
            and self.children == other.children
        )

    __hash__ = None  # type: ignore[assignment]


def _serialize(el: Element, parent_xmlns: str, out: list[str]) -> None:
    name = el.name
    xmlns = el.xmlns
    if xmlns != parent_xmlns:
        out.append(f'<{name} xmlns="{escape_attr(xmlns)}"')
    else:
        out.append("<" + name)
    prefixes = 0
    for key, value in el.attrs.items():
        if key[0] == "{":  # a namespaced attribute, "{uri}local": declare a prefix for it
            uri, _, local = key[1:].partition("}")
            out.append(f' xmlns:a{prefixes}="{escape_attr(uri)}"')
            key = f"a{prefixes}:{local}"
            prefixes += 1
        out.append(f' {key}="{escape_attr(value)}"')
    children = el.children
    if not children:
        out.append("/>")
        return
    out.append(">")
    for child in children:
        if isinstance(child, str):
            out.append(escape_text(child))
        else:
            _serialize(child, xmlns, out)
    out.append(f"</{name}>")
