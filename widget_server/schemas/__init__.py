"""Marshmallow schemas, one module per API area."""
