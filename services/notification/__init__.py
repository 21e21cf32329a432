"""The notification service: the event log and its live feed, webhooks, email, preferences."""
