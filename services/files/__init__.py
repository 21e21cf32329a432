"""The files service: streamed uploads and downloads, encrypted at rest, quotas and sharing."""
