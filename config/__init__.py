"""Every environment variable of tasveer, declared once (variables.py), and the only code that reads
them (env.py); spec.py says what a declaration is, markdown.py makes the README's settings table.

A leaf: imports nothing of tasveer, so backend/, sync/ and cli/ may all import it.
"""
