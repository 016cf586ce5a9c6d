"""The real Shopify Admin GraphQL schemas (../shared/peers), built and used with graphql-core.

`../shared/peers/shopify-admin-graphql-schemas.tar.xz` holds the SDL that a live
shop's introspection gave for each version in VERSIONS. `problems()` lists what
Shopify would refuse in one request under a version: the document validated in
full (`validate`), and the variables coerced against the operation's declared
types (`get_variable_values`). `run()` executes a request against a version
with the fake shop's resolvers, so an answer carries exactly the selected
fields, typed as the schema types them. Without the archive every caller skips
with the reason.
"""

from __future__ import annotations

import functools
import tarfile
from collections.abc import Mapping
from typing import Any

import pytest
from graphql import (
    ExecutionResult,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    build_schema,
    graphql_sync,
    parse,
    validate,
)
from graphql.execution.values import get_variable_values

from ..helpers import ROOT

ARCHIVE = ROOT.parent / "shared" / "peers" / "shopify-admin-graphql-schemas.tar.xz"
VERSIONS = ("2025-10", "2026-07")  # every request is checked against each


def require() -> None:
    """Skip the calling test when the real schemas are not beside the repository."""
    if not ARCHIVE.exists():
        pytest.skip(f"the real Shopify Admin schemas are missing ({ARCHIVE}); the Shopify tests need them")


@functools.cache
def _sdl() -> dict[str, str]:
    require()
    with tarfile.open(ARCHIVE) as archive:
        return {member.name.rsplit("/", 1)[-1].removesuffix(".graphql"): archive.extractfile(member).read().decode()  # type: ignore[union-attr]
                for member in archive.getmembers() if member.name.endswith(".graphql")}


@functools.cache
def schema(version: str) -> GraphQLSchema:
    """The Admin schema of `version`, built once per test session (Shopify's own schema breaks
    four deprecation rules of the spec, hence assume_valid)."""
    return build_schema(_sdl()[version], assume_valid=True)


def problems(version: str, document: str, variables: Mapping[str, Any] | None = None) -> list[str]:
    """What Shopify's `version` would refuse in this request ([] when it would run it); the
    variables are checked only when given."""
    try:
        tree = parse(document)
    except GraphQLError as exc:
        return [exc.message]
    found = [e.message for e in validate(schema(version), tree)]
    if found or variables is None:
        return found
    ops = [d for d in tree.definitions if isinstance(d, OperationDefinitionNode)]
    coerced = get_variable_values(schema(version), ops[0].variable_definitions or [], dict(variables))
    return [e.message for e in coerced] if isinstance(coerced, list) else []


def run(version: str, document: str, variables: Mapping[str, Any], root: Mapping[str, Any]) -> ExecutionResult:
    """Execute a request against `version`; `root` maps each top-level field to its resolver."""
    return graphql_sync(schema(version), document, root_value=root, variable_values=dict(variables))


def paths(document: str) -> set[str]:
    """Every field path a document selects, e.g. `order.fulfillmentOrders.nodes.id`, and
    `field(arg)` for each argument given."""
    out: set[str] = set()

    def walk(prefix: str, selections: SelectionSetNode | None) -> None:
        for node in selections.selections if selections else []:
            if isinstance(node, InlineFragmentNode):
                walk(prefix, node.selection_set)
            elif isinstance(node, FieldNode):
                here = f"{prefix}.{node.name.value}".lstrip(".")
                out.add(here)
                out.update(f"{here}({arg.name.value})" for arg in node.arguments or ())
                walk(here, node.selection_set)

    for definition in parse(document).definitions:
        if isinstance(definition, OperationDefinitionNode):
            walk("", definition.selection_set)
    return out
