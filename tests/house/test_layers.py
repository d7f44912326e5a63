"""The package's layers, drawn from its imports: one direction, no cycles, one home per word."""

import ast
import re

import pytest

from tests.house.imports import PACKAGE, cycles, import_graph, module_name
from widget_server.services import AREAS

GRAPH = import_graph()
PURE = ("widget_server.vocabulary", "widget_server.outbound")
VIEWS = ("widget_server.api", "widget_server.admin", "widget_server.demo")


def _under(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _arrows(source: str) -> list[tuple[str, str]]:
    return sorted((m, d) for m, deps in GRAPH.items() if _under(m, source) for d in deps)


def test_no_module_imports_itself_back():
    assert cycles(GRAPH) == []


def test_services_never_import_schemas_views_or_commands():
    upward = [
        (module, dep)
        for module, dep in _arrows("widget_server.services")
        if _under(dep, "widget_server.schemas", *VIEWS, "widget_server.commands")
        or _under(dep, "widget_server.cli")
        or dep == "widget_server"
    ]
    assert upward == []


def test_schemas_never_import_services_or_views():
    upward = [
        (module, dep)
        for module, dep in _arrows("widget_server.schemas")
        if _under(dep, "widget_server.services", *VIEWS)
    ]
    assert upward == []


def test_models_import_only_the_extensions_and_the_vocabulary():
    allowed = ("widget_server.models", "widget_server.extensions", "widget_server.vocabulary")
    assert [(m, d) for m, d in _arrows("widget_server.models") if not _under(d, *allowed)] == []


@pytest.mark.parametrize("module", PURE)
def test_the_vocabulary_and_the_network_policy_stand_alone(module):
    assert GRAPH[module] == set()


def _area(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "services" else None


def test_service_areas_import_only_the_areas_before_them():
    rank = {area: index for index, area in enumerate(AREAS)}
    upward = [
        (module, dep)
        for module, dep in _arrows("widget_server.services")
        if _area(module) in rank and _area(dep) in rank and rank[_area(dep)] > rank[_area(module)]
    ]
    assert upward == []


def test_every_service_module_lives_in_an_area():
    loose = [
        m for m in GRAPH if _under(m, "widget_server.services") and m != "widget_server.services"
    ]
    assert [m for m in loose if _area(m) not in AREAS] == []


def test_each_area_says_what_it_owns_and_may_import():
    for area in AREAS:
        doc = ast.get_docstring(
            ast.parse((PACKAGE / "services" / area / "__init__.py").read_text())
        )
        assert doc and "May import" in doc, area


#: Words of the product that must have one definition (widget_server/vocabulary.py).
VOCABULARY = {
    "METHODS",
    "METRICS",
    "MEAN_METRICS",
    "AB_DEFAULTS",
    "QUESTION_TYPES",
    "CHOICE_TYPES",
    "NUMERIC_TYPES",
    "CAMPAIGN_KINDS",
    "CAMPAIGN_STATUSES",
    "STATUS_TRANSITIONS",
    "ATTRIBUTE_OPS",
    "COMPARISONS",
    "CODE_PATTERN",
    "PREFIX_PATTERN",
    "CODE_ALPHABET",
    "WEBHOOK_EVENTS",
    "DELIVERY_STATUSES",
}


def test_the_product_words_are_defined_once():
    homes = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            for target in targets:
                if isinstance(target, ast.Name) and target.id in VOCABULARY:
                    homes.setdefault(target.id, []).append(module_name(path))
    assert homes == {word: ["widget_server.vocabulary"] for word in VOCABULARY}


def test_every_home_the_readme_names_exists():
    readme = (PACKAGE.parent / "README.md").read_text()
    table = readme.split("### Where things live", 1)[1].split("\n```", 1)[0]
    homes = re.findall(r"^\| [^|]+ \| `([^`]+)` \|", table, flags=re.MULTILINE)
    assert len(homes) >= 15
    assert [home for home in homes if not (PACKAGE.parent / home).exists()] == []
    areas = {home.split("/")[2] for home in homes if home.startswith("widget_server/services/")}
    assert areas == set(AREAS)
