"""The window (Qt only). Importing it guards against a binding bug: see :mod:`._bindings`."""

from civdesk.ui._bindings import keep_none_alive

keep_none_alive()
