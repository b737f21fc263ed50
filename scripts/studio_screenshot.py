"""A screenshot of a running studio's DFI tab after one Edit of a photo, as a user sees it (docs/studio_photo.png).

    python -m experiments.studio &                      # the studio's defaults: 64 px, 100 iterations
    python scripts/studio_screenshot.py --photo hopper.jpg --out docs/studio_photo.png

Drives Debian's Chromium (or --chromium PATH) with Playwright: uploads the photo, presses Edit with the
page's defaults (Smiling+, the dfijax preset), waits for the finished ladder and saves the whole page,
900 px wide in 64 colours so that it is small enough to commit.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import sys
import time

from PIL import Image


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, read without running anything."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="http://127.0.0.1:7860/", help="the running studio")
    p.add_argument("--photo", required=True, help="the photo to upload")
    p.add_argument("--out", default="docs/studio_photo.png", help="where to write the screenshot")
    p.add_argument("--chromium", default=shutil.which("chromium") or "chromium", help="the browser to drive")
    p.add_argument("--timeout", type=float, default=900, help="seconds to wait for the Edit")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse(argv)
    from playwright.sync_api import sync_playwright  # the app extra

    wait = int(a.timeout * 1000)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=a.chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        page.goto(a.url)
        page.get_by_text("dfijax studio").first.wait_for(timeout=60_000)
        page.locator("#dfi-photo input[type=file]").set_input_files(a.photo)
        page.locator("#dfi-note").get_by_text("face").wait_for(timeout=wait)
        t0 = time.perf_counter()
        page.locator("#dfi-run").click()
        page.locator("#dfi-info").get_by_text("alphas in one press").wait_for(timeout=wait)
        page.wait_for_timeout(1500)
        shot = pathlib.Path(a.out).with_suffix(".full.png")
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    pic = Image.open(shot).convert("RGB")
    pic = pic.resize((900, round(pic.height * 900 / pic.width)), Image.LANCZOS)
    pic.quantize(64, method=Image.Quantize.MEDIANCUT).save(a.out, optimize=True)
    shot.unlink()
    print(f"Edit finished in {time.perf_counter() - t0:.0f} s; wrote {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
