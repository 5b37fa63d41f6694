"""One module per ``pipesim`` subcommand; each exposes ``register(subparsers)``.

A command's ``run(args)`` returns the process exit code.  Adding a command is
adding a module here and its name to :data:`COMMANDS`.
"""

COMMANDS = ["info", "evaluate", "solve", "hardware", "graph", "latency", "simulate", "compare", "run", "sweep", "plan"]
