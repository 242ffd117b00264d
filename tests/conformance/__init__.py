"""The conformance harness: every registered primitive, routed NumPy function and SciPy
dispatcher checked from one table of specs (see README.md in this folder)."""
