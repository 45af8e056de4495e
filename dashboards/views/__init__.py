"""The dashboard's pages, one module each (``dashboards/app.py`` routes to them)."""
