"""The analytics service: usage taken in from the services' events, performance, reports.

Layers as every service (``services/README.md``): ``api.py`` (servicer); the domain split
by concern — ``usage.py`` (taking in, counting, series), ``performance.py``, ``report.py``
(monthly report, CSV and HTML); ``store.py`` (all SQL). ``services/analytics/README.md``
documents the usage model.
"""
