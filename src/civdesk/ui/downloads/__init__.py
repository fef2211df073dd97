"""The downloads' faces: Qt views of the core :class:`~civdesk.core.downloads.queue.DownloadQueue`.

``worker.py`` runs the queue on its own thread and turns its callbacks into signals (the
:class:`~civdesk.ui.services.downloads.DownloadService` owns it); ``model.py`` relays those
signals into an item model; ``delegate.py`` paints one row; ``page.py`` is the Downloads
page; ``summary.py`` and ``indicator.py`` the queue's line and count in the status bar.
"""
