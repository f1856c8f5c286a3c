"""Where the text stage's stateless segments run: in process (local) or on Ray actors."""

from capbuild.stages.text.executors.base import EXECUTORS, Executor, ExecutorOptions, LocalExecutor, open_executor

__all__ = ["EXECUTORS", "Executor", "ExecutorOptions", "LocalExecutor", "open_executor"]
