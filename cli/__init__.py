"""The `tasveer` command line: `main.py` dispatches, one small module per verb over library code."""
