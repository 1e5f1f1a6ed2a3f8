"""Steps in JupyterLab through its own command registry (exposed as window.jupyterapp)."""

from __future__ import annotations

from typing import Any

CELL_SECONDS = 120

IS_CURRENT = """name => {
    const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    return Boolean(panel && panel.context && panel.context.path === name);
}"""

OPEN_NOTEBOOK = """async () => {
    const panel = window.jupyterapp.shell.currentWidget;
    await panel.context.ready;
    await panel.sessionContext.ready;
    return panel.context.path;
}"""

ALL_CELLS_RUN = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    const cells = panel.content.widgets.filter(cell => cell.model.type === 'code');
    return kernel && kernel.status === 'idle'
        && cells.every(cell => cell.model.executionCount !== null
            && !cell.node.querySelector('.jp-InputArea-prompt').textContent.includes('*'));
}"""

ERRORS = """() => window.jupyterapp.shell.currentWidget.content.widgets
    .filter(cell => cell.model.type === 'code')
    .flatMap(cell => cell.model.outputs.toJSON())
    .filter(output => output.output_type === 'error')
    .map(output => output.ename + ': ' + output.evalue)"""


def open_notebook(page: Any, url: str, name: str) -> None:
    """Open a notebook and wait until its kernel is up."""
    page.goto(url)
    # JupyterLab may first restore notebooks an earlier test left open in the workspace
    page.wait_for_function(IS_CURRENT, arg=name, timeout=60_000)
    assert page.evaluate(OPEN_NOTEBOOK) == name


def run_all_cells(page: Any) -> None:
    """Run the open notebook top to bottom; fail on the first error output."""
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(ALL_CELLS_RUN, timeout=CELL_SECONDS * 1000, polling=250)
    errors = page.evaluate(ERRORS)
    assert errors == [], errors
