"""The YAML dialect of recipes: PyYAML's safe loader and dumper with two small extensions of YAML 1.1.

A duplicate key is an error (PyYAML silently keeps the last), and ``1e-3`` is a float (YAML 1.1 only reads
``1.0e-3`` as one; ``lr: 1e-3`` would be a string). Recipe files, override values and ``changes:`` entries are
all read with :class:`Loader`; :class:`Dumper` writes what it reads back the same.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

# ``1e-3`` (no dot) as a float; YAML 1.1's own float pattern needs a dot.
_EXP_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$")


class Loader(yaml.SafeLoader):
    """PyYAML's safe loader; a duplicate key in a mapping is an error instead of silently winning."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, f"found duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class Dumper(yaml.SafeDumper):
    """Writes lists of scalars inline (``rates: [0.0, 0.1]``) and quotes strings the loader would read as floats."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(not isinstance(x, (dict, list, tuple)) for x in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


Loader.add_implicit_resolver("tag:yaml.org,2002:float", _EXP_FLOAT, list("-+0123456789"))
Dumper.add_implicit_resolver("tag:yaml.org,2002:float", _EXP_FLOAT, list("-+0123456789"))
Dumper.add_representer(list, _represent_list)
Dumper.add_representer(tuple, _represent_list)
