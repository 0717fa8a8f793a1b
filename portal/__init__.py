"""Sponsor Portal web app: sign-in, principals, navigation and the access log."""
