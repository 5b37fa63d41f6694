"""One module per ``pipesim`` subcommand; each exposes ``register(subparsers)``.

A command's ``run(args)`` returns the process exit code.  Adding a command is
adding a module here and its name and one-line help to :data:`HELP` (the
help is shown without importing the module, which keeps start-up fast).
"""

#: command -> one-line help, in the order ``pipesim --help`` lists them
HELP = {
    "info": "print a workload's vital statistics",
    "evaluate": "per-device loads and max-load of a split",
    "solve": "find the split with the least max-load",
    "latency": "latency of one sample: latency IP, greedy, or of a given split",
    "simulate": "simulate a split on a stream of microbatches",
    "compare": "every method on one workload: max-load, ratio to the optimum, time",
    "run": "run a scenario file: build, solve, simulate, report",
    "sweep": "run a scenario over a grid of what-if values",
    "graph": "generate or import workload graphs for a hardware system",
    "hardware": "list and show hardware presets; fit a CPU to profiles (calibrate)",
    "schedule": "show, export and compare pipeline schedules (F/B/I/W orders per rank)",
    "plan": "best hybrid-parallel plan (pipeline x data x tensor) under memory",
    "estimate": "step time and memory of one LLM training configuration (Megatron-Core)",
    "profile": "measure an ONNX model's node costs on this machine (ONNX Runtime)",
    "execute": "run a split of an ONNX model as a real pipeline of processes",
}
COMMANDS = list(HELP)

#: Exit codes of every command (shown in ``pipesim --help``).
EXIT_OK = 0
#: Another failure: ``execute``'s outputs differ from the whole model's; every point of a sweep failed.
EXIT_FAILED = 1
#: Bad input or usage: one line on stderr naming the file (or option) and the field.
EXIT_INPUT = 2
#: The command ran but no feasible answer exists (the reason is printed): an infeasible split,
#: plan or scenario, or a saved plan that breaks a rule of the workload it is evaluated on.
EXIT_INFEASIBLE = 3
#: Interrupted (Ctrl-C).
EXIT_INTERRUPTED = 130

EXIT_CODES = (
    "exit codes: 0 done; 2 bad input or usage (one line naming the file or option and the field); "
    "3 no feasible answer (infeasible split or plan, with the reason); 1 another failure (execute's "
    "outputs differ, every sweep point failed); 130 interrupted"
)
