"""The pipeline driver and the lifecycle around it, the same for every task.

- :mod:`~shipyard.pipeline.driver`: read, contract, split, fit, parity, evaluate, register, gate;
- :mod:`~shipyard.pipeline.evaluation`: score a registered version on a labelled file;
- :mod:`~shipyard.pipeline.retrain`: one turn of the closed loop (retrain, gate, promote);
- :mod:`~shipyard.pipeline.rollout`: canary, then promote; automatic rollback;
- :mod:`~shipyard.pipeline.watch`: the continuous monitoring policy;
- :mod:`~shipyard.pipeline.monitor`: drift windows and live numbers of a served version;
- :mod:`~shipyard.pipeline.scoring`: batch scoring of files;
- :mod:`~shipyard.pipeline.lineage`: code and package versions of a run.

Each step asks the model's task (:mod:`shipyard.tasks.base`) what to do; nothing here compares
a task's name.
"""

from shipyard.pipeline.driver import TrainRun, train
from shipyard.pipeline.evaluation import EvaluationRun, evaluate

__all__ = ["EvaluationRun", "TrainRun", "evaluate", "train"]
