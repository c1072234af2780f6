"""No import cycle between the modules of `keras_attention`.

The graph is built from the source with `ast`, without importing anything:
an edge `a -> b` for every `import` or `from ... import` in module `a`
(at module level or inside a function or method, where a cycle likes to
hide) that names module `b` of the package, and for every
`importlib.import_module("...")` with a literal name. `from p import x` is
an edge to `p.x` when that is a module, else to `p`. Initialising a parent
package is not an edge: `import p.q` runs `p/__init__.py` first, but
counting that would put every module in a cycle with its package's
re-exports.

Between the package's parts (its subpackages and top-level modules) the
rule is stricter: `import p.q` does run `p/__init__.py`, so an import of
any module of a part depends on the whole part, and the parts must form
layers, with no cycle (ops -> layers -> models -> serving, data -> text ->
files, ...), except for the deprecated aliases named in
`DEPRECATED_ALIAS_EDGES`.
"""

import ast
import importlib.util
import os

PACKAGE = "keras_attention"
# Found without running the package's `__init__.py`.
(PACKAGE_DIR,) = importlib.util.find_spec(PACKAGE).submodule_search_locations


def module_files(package_dir, package=PACKAGE):
    """`{module name: source path}` for every `.py` file of the package."""
    modules = {}
    for root, dirs, files in os.walk(package_dir):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        relative = os.path.relpath(root, package_dir)
        parts = [package] + ([] if relative == "." else relative.split(os.sep))
        for name in sorted(files):
            if name.endswith(".py"):
                stem = name[: -len(".py")]
                names = parts if stem == "__init__" else parts + [stem]
                modules[".".join(names)] = os.path.join(root, name)
    return modules


def _known(name, modules):
    """The longest prefix of dotted `name` that is a module, or `None`."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def _imported_names(tree, module, is_package):
    """Every dotted name the module imports, relative imports resolved."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                yield f"{base}.{alias.name}"
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.args[0].value


def import_graph(modules):
    """`{module: set of package modules it imports}`."""
    graph = {}
    for module, path in modules.items():
        with open(path, encoding="utf-8") as file:
            tree = ast.parse(file.read(), filename=path)
        is_package = os.path.basename(path) == "__init__.py"
        targets = set()
        for name in _imported_names(tree, module, is_package):
            target = _known(name, modules)
            if target is not None and target != module:
                targets.add(target)
        graph[module] = targets
    return graph


def find_cycles(graph):
    """One cycle (a list of modules, first == last) per strongly connected
    component of more than one module (Tarjan's algorithm)."""
    index, lowlink, on_stack, stack, components = {}, {}, set(), [], []

    def visit(node):
        index[node] = lowlink[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                lowlink[node] = min(lowlink[node], lowlink[target])
            elif target in on_stack:
                lowlink[node] = min(lowlink[node], index[target])
        if lowlink[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_in(component, graph) for component in components]


def _cycle_in(component, graph):
    """A shortest path from the component's first module back to itself."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        next_frontier = []
        for node in frontier:
            for target in sorted(graph[node] & component):
                if target == start:
                    return paths[node] + [start]
                if target not in paths:
                    paths[target] = paths[node] + [target]
                    next_frontier.append(target)
        frontier = next_frontier
    return [start]


def test_the_package_has_no_import_cycle():
    modules = module_files(PACKAGE_DIR)
    assert "keras_attention.serving.constants" in modules
    cycles = find_cycles(import_graph(modules))
    assert not cycles, "Import cycles:\n" + "\n".join(
        " -> ".join(cycle) for cycle in cycles
    )


# Aliases kept one release for names that moved up a layer (they import
# from above on purpose): `module -> part` edges the layering ignores.
DEPRECATED_ALIAS_EDGES = {
    # `models.Translator` and `models.Seq2SeqTranslator`, loaded on use.
    ("keras_attention.models", "keras_attention.serving"),
    (
        "keras_attention.models.transformer_translator",
        "keras_attention.serving",
    ),
}


def part_of(module):
    """The part of the package `module` belongs to: `keras_attention.x`."""
    return ".".join(module.split(".")[:2])


def part_graph(graph, ignored_edges=()):
    """`{part: set of parts it imports}`; the root `__init__` left out (it
    re-exports every part, on first use)."""
    parts = {part_of(module): set() for module in graph}
    for module, targets in graph.items():
        if module == PACKAGE:
            continue
        for target in targets:
            source, destination = part_of(module), part_of(target)
            if source != destination and (module, destination) not in set(
                ignored_edges
            ):
                parts[source].add(destination)
    return parts


def test_the_parts_of_the_package_form_layers():
    graph = part_graph(
        import_graph(module_files(PACKAGE_DIR)), DEPRECATED_ALIAS_EDGES
    )
    assert "keras_attention.serving" in graph["keras_attention.cli"]
    assert "keras_attention.ops" in graph["keras_attention.layers"]
    cycles = find_cycles(graph)
    assert not cycles, "Import cycles between parts:\n" + "\n".join(
        " -> ".join(cycle) for cycle in cycles
    )


def test_a_cycle_between_parts_through_a_package_init_is_found(tmp_path):
    # No module cycle: `a.x -> b.y` and `b.z -> a.w`, but importing `b.y`
    # runs `b/__init__.py`, which may import `b.z`, which imports `a`.
    package = tmp_path / PACKAGE
    for part in ("a", "b"):
        (package / part).mkdir(parents=True)
        (package / part / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "a" / "x.py").write_text("from keras_attention.b import y\n")
    (package / "a" / "w.py").write_text("")
    (package / "b" / "y.py").write_text("")
    (package / "b" / "z.py").write_text(
        "def f():\n    import keras_attention.a.w\n"
    )
    graph = import_graph(module_files(str(package)))
    assert find_cycles(graph) == []
    assert find_cycles(part_graph(graph)) == [
        ["keras_attention.a", "keras_attention.b", "keras_attention.a"]
    ]
    ignored = {("keras_attention.b.z", "keras_attention.a")}
    assert find_cycles(part_graph(graph, ignored)) == []


def test_serving_constants_is_a_leaf():
    graph = import_graph(module_files(PACKAGE_DIR))
    assert graph["keras_attention.serving.constants"] == set()


def test_a_cycle_hidden_in_a_function_is_found(tmp_path):
    package = tmp_path / PACKAGE
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from keras_attention import a\n")
    (package / "a.py").write_text("from keras_attention.sub import b\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("def f():\n    from .. import c\n")
    (package / "c.py").write_text("import keras_attention.a\n")
    cycles = find_cycles(import_graph(module_files(str(package))))
    assert cycles == [
        [
            "keras_attention.a",
            "keras_attention.sub.b",
            "keras_attention.c",
            "keras_attention.a",
        ]
    ]
