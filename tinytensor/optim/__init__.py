"""tinytensor.optim: optimizers and learning-rate schedules with torch.optim's names."""
from . import lr_scheduler  # noqa: F401
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .sgd import SGD
