"""scripts/screenshots.py: every shot named by page, size and theme, at the size asked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PySide6.QtGui import QImage

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "screenshots.py"


def test_one_size_and_theme_renders_its_pages_and_skips_the_unknown(tmp_path: Path) -> None:
    out = tmp_path / "shots"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(out), "--sizes", "900x600", "--themes", "light",
         "--pages", "models,settings,first-start-models,downloads,no-such-page"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "note: no shot named 'no-such-page': skipped" in done.stdout
    names = sorted(p.name for p in out.iterdir())
    expected = ["first-start-models-900x600-light.png", "models-900x600-light.png",
                "settings-900x600-light.png"]
    # The window may not have a Downloads page yet: then it says so and goes on.
    if "downloads-900x600-light.png" in names:
        expected = sorted([*expected, "downloads-900x600-light.png"])
    else:
        assert "note: the window has no page 'downloads': skipped" in done.stdout
    assert names == expected
    for name in names:
        image = QImage(str(out / name))
        assert (image.width(), image.height()) == (900, 600), name
        # Light: the window's ground is light (a blank or black grab would not be).
        assert image.pixelColor(450, 2).lightness() > 128, name
