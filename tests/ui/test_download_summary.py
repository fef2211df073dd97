"""The queue's one line in the status bar, and its count, without widgets or threads."""

from __future__ import annotations

from tests.ui.test_download_model import snap

from civdesk.ui.downloads.summary import QueueCounts, counts_text, queue_counts

MB = 1_000_000


def test_idle_says_no_downloads():
    counts = queue_counts([snap(1, "completed"), snap(2, "failed")], finished=2)
    assert counts == QueueCounts()  # finished ones of an ended run are not counted
    assert counts_text(counts) == "No downloads"


def test_one_download_shows_its_name_percent_and_speed():
    running = snap(1, "downloading", bytes_done=45 * MB, bytes_total=100 * MB,
                   speed=12 * MB, file_name="paperfold.safetensors")
    counts = queue_counts([running])
    assert counts.active == 1 and counts.batch == 1
    assert counts_text(counts) == "paperfold.safetensors · 45% · 12.0 MB/s"


def test_several_show_which_of_how_many():
    tasks = [snap(1, "completed"),
             snap(2, "downloading", bytes_done=45 * MB, bytes_total=100 * MB, speed=12 * MB),
             snap(3), snap(4), snap(5)]
    counts = queue_counts(tasks, finished=1)
    assert (counts.active, counts.batch) == (4, 5)
    assert counts_text(counts) == "2 of 5 · 45% · 12.0 MB/s"


def test_an_unknown_size_leaves_the_percent_out():
    counts = queue_counts([snap(1, "downloading", bytes_done=MB, bytes_total=None)])
    assert counts.percent is None
    assert counts_text(counts) == "file1.safetensors"


def test_waiting_and_paused_say_so():
    assert counts_text(queue_counts([snap(1), snap(2)])) == "2 downloads waiting"
    assert counts_text(queue_counts([snap(1)], paused=True)) == "Downloads paused · 1 waiting"
