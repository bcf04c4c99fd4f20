"""The one YAML loader for text from outside (service definitions, uploads, the rules file): safe tags only, and
limits on size, aliases, nesting and the size the aliases expand to, so an alias bomb is refused while parsing."""

from __future__ import annotations

import yaml
from yaml.error import Mark
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, SequenceNode

MAX_BYTES = 1_000_000  # a shipped definition is a few kilobytes, the rules file about 20
MAX_ALIASES = 100
MAX_DEPTH = 50
# Nodes counted as if every alias were copied out: what a consumer that walks the data (JSON Schema, JSON) sees.
MAX_NODES = 100_000


class YAMLLimitError(yaml.MarkedYAMLError):
    """The text goes past one of the limits; problem_mark is where."""

    def __init__(self, problem: str, mark: Mark | None):
        super().__init__(problem=problem, problem_mark=mark)


class LimitedLoader(yaml.SafeLoader):
    """SafeLoader that refuses, as it composes, more than MAX_ALIASES aliases, nesting deeper than MAX_DEPTH and a
    document that would expand to more than MAX_NODES nodes; text longer than MAX_BYTES is refused unread."""

    def __init__(self, stream: str | bytes):
        size = len(stream.encode("utf-8")) if isinstance(stream, str) else len(stream)
        if size > MAX_BYTES:
            raise YAMLLimitError(f"the text has {size:,} bytes, more than the {MAX_BYTES:,} allowed", None)
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0
        self._weights: dict[int, int] = {}  # id(node) -> its node count with aliases expanded, once composed

    def compose_node(self, parent: Node | None, index: object) -> Node | None:
        mark = self.peek_event().start_mark
        if self.check_event(AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise YAMLLimitError(f"more than {MAX_ALIASES} aliases (*name)", mark)
            node = super().compose_node(parent, index)
            if id(node) not in self._weights:
                raise YAMLLimitError("an alias inside the node it names", mark)
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise YAMLLimitError(f"nested deeper than {MAX_DEPTH} levels", mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        weight = 1 + sum(self._weights[id(child)] for child in _children(node))
        if weight > MAX_NODES:
            raise YAMLLimitError(f"expands to more than {MAX_NODES:,} values (through its aliases)", mark)
        self._weights[id(node)] = weight
        return node


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def load(text: str | bytes) -> object:
    """The data of one YAML document; raises yaml.YAMLError (YAMLLimitError past a limit)."""
    loader = LimitedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
