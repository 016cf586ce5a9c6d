"""The command line: Typer sub-apps, one module per noun. Parse, call core, render."""
