"""No import circle in mmase/: the imports between mmase's modules form a DAG (this fails on the
pre-redesign tree: the meters and task_metrics imported each other).

An edge ``a -> b`` is an ``import b`` / ``from b import ...`` anywhere in ``a`` (an import inside a
function that closes a circle only hides it); ``from b import c`` counts as ``b.c`` when ``c`` is a
module; relative imports are resolved. Imports of the importer's own ancestor packages are left
out (Python runs those first, whatever the order)."""
import ast
import os
import os.path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PACKAGE = osp.join(ROOT, 'mmase')


def modules():
    found = {}
    for folder, dirs, files in os.walk(PACKAGE):
        dirs[:] = [d for d in dirs if not d.startswith(('.', '__'))]
        for name in files:
            if name.endswith('.py'):
                path = osp.join(folder, name)
                rel = osp.relpath(path, ROOT)[:-3].replace(os.sep, '.')
                found[rel[:-len('.__init__')] if rel.endswith('.__init__') else rel] = path
    return found


def edges(name, path, known):
    tree = ast.parse(open(path).read())
    package = name if path.endswith('__init__.py') else name.rpartition('.')[0]
    out = set()
    for node in ast.walk(tree):  # function-level imports included: a circle all the same
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parts = package.split('.')
                parent = '.'.join(parts[:len(parts) - node.level + 1])
                base = f'{parent}.{base}' if base else parent
            targets = [f'{base}.{a.name}' if f'{base}.{a.name}' in known else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            if target in known and target != name and not name.startswith(target + '.'):
                out.add(target)
    return out


def test_no_import_circle():
    known = modules()
    graph = {name: edges(name, path, known) for name, path in known.items()}
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, '\n'.join(' -> '.join(c) for c in cycles[:10])
    assert len(graph) > 100  # the walk found the package
