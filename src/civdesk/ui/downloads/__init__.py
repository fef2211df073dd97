"""The download dock: a Qt face on the core :class:`~civdesk.core.downloads.queue.DownloadQueue`.

``worker.py`` runs the queue on its own thread and turns its callbacks into signals;
``model.py`` relays those signals into an item model; ``delegate.py`` paints one row;
``dock.py`` puts it all in the always-visible dock.
"""
