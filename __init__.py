"""Not a package: this file only turns a confusing error into a clear one.

When this repository is checked out into a folder named `tinytensor` and Python runs in the folder above
it, `import tinytensor` would find the checkout itself (an empty namespace package) instead of the real
package inside it, and fail later with "module 'tinytensor' has no attribute ...". With this file the
checkout is found as a package and raises at once, saying what to do.
"""
import os

raise ImportError(
    f"'import {__name__}' found the tinytensor repository checkout at {os.path.dirname(os.path.abspath(__file__))}, "
    "not the package inside it: run Python from inside the checkout, or install it with "
    "`pip install -e <checkout>` and run from any folder other than the checkout's parent")
