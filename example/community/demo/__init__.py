"""The pieces of ``manage.py demo``: simulate a community, process, report."""
