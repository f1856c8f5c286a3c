"""Where the text stage's stateless filter segments run: in process (local) or on Ray actors."""

from capbuild.executors.base import EXECUTORS, Executor, ExecutorOptions, LocalExecutor, open_executor

__all__ = ["EXECUTORS", "Executor", "ExecutorOptions", "LocalExecutor", "open_executor"]
