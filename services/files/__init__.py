"""The files service: streamed uploads and downloads, encrypted at rest, quotas and sharing.

Reading order: ``app`` (wiring) → ``api`` (servicer) → ``domain`` (operations and access
rules) → ``store`` (every query, ListFiles' fields included) / ``blobs`` (ciphertext
storage) / ``crypto`` (chunked AES-256-GCM, wrapped data keys) / ``content`` (workbook
checks); ``config`` parses the files settings.

Master key rotation: give every replica the new key (``ALEA_FILES_MASTER_KEYS`` with
both keys, ``ALEA_FILES_MASTER_KEY_ID`` = the new id) and restart them, then run
``python -m services.files rotate-keys``; once it reports, the old key can be removed.
In development, ``rotate-keys --new-dev-key`` adds the key to ``$ALEA_HOME/keys`` (restart
the service afterwards so it loads the new key).
"""
