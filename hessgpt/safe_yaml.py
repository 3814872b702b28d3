"""YAML from untrusted files: safe constructors only, no duplicate keys, and aliases bounded.

A size limit on the file's bytes is not enough: ``&s`` on a 1 MB string and ``[*s, *s, ...]`` make a
small file expand into hundreds of megabytes once anything walks or writes the data. The node tree is
measured as if every alias were expanded, and refused past the budget, before any object is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hessgpt.errors import HessError

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def expanded_size(tree: yaml.Node, path: Path) -> int:
    """Characters of scalars plus one per entry, with every alias counted in full (iterative: deep
    nesting costs no Python stack). A node that contains itself is refused."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(tree, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            children = _children(node)
            own = len(node.value) if isinstance(node, yaml.ScalarNode) else len(children)
            sizes[key] = own + sum(sizes[id(c)] for c in children)
            on_path.discard(key)
            continue
        if key in sizes:
            continue
        if key in on_path:
            line = node.start_mark.line + 1
            raise HessError(f"{path}: line {line}: a YAML alias refers to the node that contains it")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)
    return sizes[id(tree)]


def _duplicate_key(node: yaml.Node) -> yaml.Node | None:
    """The first repeated key in any mapping (safe_load would silently keep the last one)."""
    seen_nodes: set[int] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if id(current) in seen_nodes:  # aliases share nodes; visit each once
            continue
        seen_nodes.add(id(current))
        if isinstance(current, yaml.MappingNode):
            keys: set[str] = set()
            for key_node, value_node in current.value:
                if isinstance(key_node, yaml.ScalarNode):
                    if key_node.value in keys:
                        return key_node
                    keys.add(key_node.value)
                stack.append(value_node)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
    return None


def parse_yaml(path: Path, text: str, max_expanded: int) -> Any:
    """Parse ``text`` (read from ``path``) into plain data, or raise a HessError naming the file."""
    try:
        # One parse with libyaml when available: the node tree serves the checks and is then
        # constructed into plain data (pure-Python parsing of the suites takes seconds).
        loader = _LOADER(text)
        try:
            tree = loader.get_single_node()
            if tree is not None:
                size = expanded_size(tree, path)
                if size > max_expanded:
                    raise HessError(f"{path}: the YAML expands to {size} characters through its aliases "
                                    f"(&anchor / *alias), over the limit of {max_expanded}")
                duplicate = _duplicate_key(tree)
                if duplicate is not None:
                    raise HessError(f"{path}: line {duplicate.start_mark.line + 1}: "
                                    f"duplicate key '{duplicate.value}'")
            data = loader.construct_document(tree) if tree is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise HessError(f"{path}: {line}YAML syntax error: {problem}") from None
    except RecursionError:
        raise HessError(f"{path}: the YAML is nested too deeply") from None
    return data
