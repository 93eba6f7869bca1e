# Load the Celery app with Django, so that @shared_task tasks bind to it.
from example_project.celery import app as celery_app

__all__ = ["celery_app"]
