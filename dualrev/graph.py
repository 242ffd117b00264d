"""``python -m dualrev.graph module:function --args ...``: draw a function's computational
graph to an SVG file (see ``dualrev.drawing.cli``).

``dualrev.graph`` itself is the function ``dualrev.drawing.graph``; this file exists only
so that ``-m dualrev.graph`` names the command line. Imported as a module it would
replace that function on the package (Python sets ``dualrev.graph`` to a submodule it
imports), so importing it is refused: import ``dualrev.drawing`` for the classes.
"""

from __future__ import annotations

from .drawing.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
raise ImportError(
    "dualrev.graph is a function (dualrev.graph(f)(*args)); its module is dualrev.drawing. "
    "Run the command line with `python -m dualrev.graph module:function --args ...`")
