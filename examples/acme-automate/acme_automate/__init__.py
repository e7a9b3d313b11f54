"""Acme Helpdesk plugins for Django Automate (an example third-party package)."""
