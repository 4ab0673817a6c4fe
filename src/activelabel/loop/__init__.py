"""The active-learning cycle, its evaluation, costs and simulation."""

from activelabel.loop.cost import CostModel, CostSummary
from activelabel.loop.evaluation import Metrics, evaluate
from activelabel.loop.learner import ActiveLearner, CycleRecord, QueryContext

__all__ = ["ActiveLearner", "CostModel", "CostSummary", "CycleRecord", "QueryContext", "Metrics", "evaluate"]
