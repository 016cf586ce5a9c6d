"""The core of statusctl: storage, rules and the stack controller. No typer, no rich."""
