"""Channel every notification a Django project sends through one model, one decorator, one task."""

from transmissions.behaviors import TriggerBehavior
from transmissions.decorators import message

__all__ = ["TriggerBehavior", "message"]
__version__ = "1.0.0"
