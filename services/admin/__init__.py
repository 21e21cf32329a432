"""The admin service: audit log with signed checkpoints, settings, overview, user administration.

Layers as every service (``services/README.md``): ``api.py`` (servicer) with ``convert.py``
(protobuf ↔ domain); the domain split by concern — ``audit.py`` with ``chain.py`` (the hash
chain) and ``signing.py`` (checkpoint key), ``settings.py``, ``overview.py``, ``users.py``;
``store.py`` (all SQL). See ``services/admin/README.md`` for what the audit log guarantees.
"""
