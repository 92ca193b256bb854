"""errgate: a self-hosted error tracking gateway speaking GitLab's Error Tracking API and Sentry's ingestion protocol."""
