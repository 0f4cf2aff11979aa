"""Checks in a real headless browser that the MLflow UI lists a metanas search.

Runs a small tracked evolution search on digits into a fresh SQLite store,
starts ``metanas ui`` on it (127.0.0.1), loads the experiment page in
Debian's headless ``chromium``, and checks that the rendered page lists the
parent run and its nested trial runs. Saves a screenshot.

Usage:
    .venv/bin/python scripts/check_mlflow_ui.py [--screenshot docs/mlflow-ui.png]
        [--chromium /usr/bin/chromium] [--keep DIR]

Exit status 0 when the page shows the search and its trials, 1 otherwise.
Needs ``apt-get install -y chromium chromium-driver`` and the ``ui-check``
extra (selenium); neither is needed by ``make test``.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def run_search(store: str, directory: str, trials: int) -> list:
    import keras

    from metanas.demo import build_mlp, load_digits_split
    from metanas.tracking import MlflowTracker
    from metanas.tuners import EvolutionSearch

    keras.utils.set_random_seed(1)
    (x, y), (x_val, y_val) = load_digits_split(1)
    tuner = EvolutionSearch(
        build_mlp, objective="val_accuracy", max_trials=trials, population_size=3,
        tournament_size=2, seed=1, directory=directory, project_name="digits_evolution",
        tracking=MlflowTracker(tracking_uri=store),
    )
    tuner.search(x[:600], y[:600], validation_data=(x_val, y_val), epochs=3, batch_size=64,
                 verbose=0)
    return sorted(tuner.oracle.trials)


def show_columns(browser, names: list, hide: list) -> None:
    """Picks the runs table's columns in its "Columns" menu (cosmetic: best effort)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    def search_box():
        boxes = browser.find_elements(By.CSS_SELECTOR, "input[placeholder='Search columns']")
        if not boxes:
            next(b for b in browser.find_elements(By.TAG_NAME, "button")
                 if b.text.strip() == "Columns").click()
            time.sleep(0.5)
            boxes = browser.find_elements(By.CSS_SELECTOR, "input[placeholder='Search columns']")
        return boxes[0]

    picked = 0
    for name in hide + names:
        for _ in range(3):  # the menu re-renders while typing: retry stale elements
            try:
                box = search_box()
                box.send_keys(Keys.CONTROL, "a")
                box.send_keys(Keys.BACKSPACE)
                box.send_keys(name)
                time.sleep(0.5)
                # Only inside the menu (the smallest ancestor of the box that
                # holds its column tree), never a table header of the same name.
                menu = box.find_element(
                    By.XPATH, "./ancestor::*[.//*[" + " or ".join(
                        f"starts-with(normalize-space(text()), '{group}')"
                        for group in ("Attributes", "Metrics", "Parameters")
                    ) + "]][1]"
                )
                entry = next(
                    e for e in menu.find_elements(By.XPATH, f".//*[normalize-space(text())='{name}']")
                    if e.is_displayed()
                )
                entry.click()
                picked += 1
                break
            except Exception:  # noqa: BLE001 - stale or missing: try again
                time.sleep(0.3)
    try:
        search_box().send_keys(Keys.ESCAPE)
    except Exception:  # noqa: BLE001
        pass
    time.sleep(0.5)
    if picked < len(hide) + len(names):
        print(f"picked {picked} of {len(hide) + len(names)} columns (cosmetic)")


def browse(url: str, names: list, screenshot: pathlib.Path, binary: str, driver: str) -> list:
    """Opens ``url`` in headless chromium, expands the parent run, screenshots it.

    Returns the ``names`` the rendered page does not show.
    """
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-dev-shm-usage", "--window-size=1500,850"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver), options=options)
    try:
        browser.get(url)
        wait = WebDriverWait(browser, 60)
        parent = names[0]
        wait.until(lambda b: parent in b.page_source)
        # Close MLflow 3's assistant side panel, if it opened, for a wider table.
        for button in browser.find_elements(By.CSS_SELECTOR, "button[aria-label*='lose']"):
            try:
                button.click()
            except Exception:  # noqa: BLE001 - not every close button is visible
                pass
        show_columns(browser, ["best_score", "objective", "strategy", "setting.population_size",
                               "setting.selection"], hide=["Dataset", "Source", "Models"])
        # Nested runs start collapsed under their parent: expand it.
        # (MLflow 3.17: the icon button in the run name cell of a parent row.)
        expanders = browser.find_elements(
            By.CSS_SELECTOR, "button[data-component-id*='runnamecellrenderer']"
        )
        for element in expanders:
            try:
                element.click()
                break
            except Exception:  # noqa: BLE001
                continue
        try:
            WebDriverWait(browser, 30).until(
                lambda b: all(name in b.page_source for name in names)
            )
        except TimeoutException:
            pass
        time.sleep(1.0)
        browser.save_screenshot(str(screenshot))
        source = browser.page_source
        return [name for name in names if name not in source]
    finally:
        browser.quit()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshot", default="docs/mlflow-ui.png")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--chromedriver",
                        default=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--keep", default=None, help="work in this directory and keep it")
    args = parser.parse_args()
    if not (os.path.exists(args.chromium) and os.path.exists(args.chromedriver)):
        print("needs chromium and its driver: apt-get install -y chromium chromium-driver",
              file=sys.stderr)
        return 1

    from mlflow.tracking import MlflowClient

    from metanas.tracking.server import free_port, wait_until_up

    work = pathlib.Path(args.keep or tempfile.mkdtemp(prefix="metanas-ui-check-"))
    work.mkdir(parents=True, exist_ok=True)
    store = f"sqlite:///{work}/mlflow.db"
    trial_ids = run_search(store, str(work / "runs"), args.trials)
    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("digits_evolution")

    port = free_port()
    metanas_bin = pathlib.Path(sys.executable).with_name("metanas")
    ui = subprocess.Popen(
        [str(metanas_bin), "ui", "--backend-store-uri", store, "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}", process=ui)
        url = f"http://127.0.0.1:{port}/#/experiments/{experiment.experiment_id}/runs"
        expected = ["evolution-digits_evolution"] + [
            f"evolution-trial-{t}" for t in trial_ids
        ]
        screenshot = pathlib.Path(args.screenshot).resolve()
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        missing = browse(url, expected, screenshot, args.chromium, args.chromedriver)
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        try:
            ui.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(ui.pid, signal.SIGKILL)
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    if missing:
        print(f"the experiment page at {url} does not list: {missing}", file=sys.stderr)
        return 1
    print(f"ok: the MLflow UI lists the search and its {len(trial_ids)} nested trials "
          f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}); screenshot {screenshot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
