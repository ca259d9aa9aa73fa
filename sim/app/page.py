"""The page: the controls of a scenario on the left, its results on the right, re-simulated after
every change with the scenario's own seed (common random numbers: a change moves the results only
through the parameter). Runs go to a worker thread (sim.app.jobs); the page shows "computing…"
meanwhile and only the newest run's results."""

from __future__ import annotations

import hashlib
import io
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import panel as pn
import xarray as xr

from models.portfolio import PortfolioError
from models.scenario import Scenario, ScenarioError
from sim.app import views
from sim.app.form import Form, make_form
from sim.app.jobs import LatestRunner, Progress
from sim.app.labels import message, translator
from sim.app.settings import Setting, error_lines
from sim.engine.plan import build_portfolio
from sim.scale.runs import run

LANGUAGES = {"English": "en", "中文": "zh"}
Schedule = Callable[[Callable[[], Any]], None]


def simulate(scenario: Scenario, progress: Progress) -> tuple[xr.Dataset, float]:
    """`sim.run` of the scenario at its own path count and seed, and the seconds it took."""
    start = time.perf_counter()
    ds = run(scenario, n_paths=scenario.simulation.n_paths, seed=scenario.simulation.seed, progress=progress)
    return ds, time.perf_counter() - start


def safe_name(name: str) -> str:
    """A file name of letters, digits, dots, dashes and underscores only (an upload's own name)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", Path(name).name) or "upload"


class Page:
    """One visitor's page. `scenarios` maps menu names to scenario files; uploads are kept in
    `upload_dir` (an exported scenario names an uploaded portfolio there by its absolute path);
    `schedule` runs a coroutine function on the server's event loop (pn.state.execute)."""

    def __init__(self, scenarios: Mapping[str, Path], n_paths: int, upload_dir: Path,
                 schedule: Schedule = pn.state.execute, lang: str = "en") -> None:
        self.scenarios, self.upload_dir, self.schedule = dict(scenarios), upload_dir, schedule
        self.lang, self.w = lang, translator(lang)
        self.runner = LatestRunner()
        self.ds: xr.Dataset | None = None
        self.shown_setting: Setting | None = None
        self.baseline: xr.Dataset | None = None
        self.portfolio: dict[str, Any] | None = None  # the uploaded portfolio's [portfolio] table
        first = next(iter(self.scenarios))
        self.setting = Setting.from_file(self.scenarios[first], n_paths)
        self._widgets(first)
        self._load_form()

    # ----- layout
    def _widgets(self, first: str) -> None:
        w = self.w
        self.title = pn.pane.Markdown(f"## {w('riskpool — scheme designer')}", margin=(0, 10))
        self.language = pn.widgets.RadioButtonGroup(options=LANGUAGES, value=self.lang, label=w("language"))
        self.menu = pn.widgets.Select(label=w("scenario"), options=list(self.scenarios), value=first)
        self.toml_upload = pn.widgets.FileInput(accept=".toml", label=w("scenario file (TOML)"))
        self.csv_upload = pn.widgets.FileInput(accept=".csv", label=w("portfolio file (CSV)"))
        self.status = pn.pane.Markdown("", css_classes=["status"], margin=(0, 10))
        self.message = pn.pane.Alert("", alert_type="danger", visible=False, css_classes=["page-message"])
        self.controls = pn.Column(sizing_mode="stretch_width")
        self.intro = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.headline, self.parties = (pn.pane.DataFrame(None, index=False, css_classes=[name],
                                                         sizing_mode="stretch_width")
                                       for name in ("headline", "parties"))
        self.charts = pn.Column(sizing_mode="stretch_width")
        self.pin = pn.widgets.Button(label=w("pin as baseline"))
        self.comparison = pn.pane.DataFrame(None, index=False, css_classes=["comparison"],
                                            sizing_mode="stretch_width")
        self.compare_note = pn.pane.Markdown(w("no baseline pinned yet"))
        self.baseline_title = pn.pane.Markdown(f"### {w('Baseline')}")
        self.export_title = pn.pane.Markdown(f"### {w('Export')}")
        self.toml_download = pn.widgets.FileDownload(callback=self.export_toml, filename="scenario.toml",
                                                     label=w("scenario TOML"), css_classes=["export-toml"])
        self.csv_download = pn.widgets.FileDownload(callback=self.export_csv, filename="results.csv",
                                                    label=w("results CSV"), css_classes=["export-csv"])
        self.language.param.watch(lambda e: self.set_language(e.new), "value")
        self.menu.param.watch(lambda e: self.switch(e.new), "value")
        self.toml_upload.param.watch(lambda e: self.upload_toml(self.toml_upload.filename, e.new), "value")
        self.csv_upload.param.watch(lambda e: self.upload_csv(self.csv_upload.filename, e.new), "value")
        self.pin.on_click(lambda e: self.pin_baseline())

    def layout(self) -> pn.viewable.Viewable:
        """The page: controls on the left, results on the right; the first run starts on load."""
        results = pn.Column(self.status, self.message, self.intro, self.headline, self.parties, self.charts,
                            self.baseline_title, self.pin, self.compare_note, self.comparison,
                            self.export_title, pn.Row(self.toml_download, self.csv_download),
                            sizing_mode="stretch_width")
        side = pn.Column(self.language, self.menu, self.toml_upload, self.csv_upload, self.controls,
                         width=420)
        pn.state.onload(self.request)
        return pn.Column(self.title, pn.Row(side, results, sizing_mode="stretch_width"),
                         sizing_mode="stretch_width")

    def _load_form(self) -> None:
        """Controls for the current setting's scenario (products, horizon), watched for changes."""
        self.form: Form = make_form(self.setting.scenario(), self.setting.n_paths, self.w)
        for f in self.form.fields:
            f.widget.param.watch(lambda e: self.request(), "value")
        self._render_controls()

    def _render_controls(self) -> None:
        w, form = self.w, self.form

        def group(title: str, fields) -> pn.Card:
            return pn.Card(*[o for f in fields for o in (f.widget, f.message)], title=w(title),
                           sizing_mode="stretch_width")

        shares = []
        for product, fields in form.shares.items():
            shares += [pn.pane.Markdown(f"**{product}**"),
                       *[o for f in fields for o in (f.widget, f.message)],
                       form.bank_rest[product], form.share_messages[product]]
        self.controls.objects = [
            group("Scheme", form.scheme[:5]), group("Default model", form.scheme[5:10] + form.stress),
            pn.Card(*shares, title=w("Sharing of losses"), sizing_mode="stretch_width"),
            group("Simulation", [*form.scheme[10:], form.paths])]
        self._show_bank_rest()

    def _show_bank_rest(self) -> None:
        for product in self.form.shares:
            keeps = self.form.bank_keeps(product)
            self.form.bank_rest[product].object = f"{self.w('the bank keeps')}: **{keeps:.4g}**"

    # ----- callbacks
    def request(self) -> None:
        """A control changed (or the page opened): simulate the setting the controls now show."""
        self._show_bank_rest()
        self.schedule(self.recompute)

    def current_setting(self) -> Setting:
        """The setting the controls show (the uploaded portfolio, if any, in place of the scenario's)."""
        changes = self.form.changes()
        if self.portfolio is not None:
            changes["portfolio"] = self.portfolio
        return self.setting.changed(changes, n_paths=self.form.paths.widget.value)

    async def recompute(self) -> bool:
        """Validate the controls' setting and, if valid, simulate it on the worker thread; True when
        its results are now shown (False: invalid, failed, or superseded by a newer change)."""
        w = self.w
        self.form.clear_messages()
        self.message.visible = False
        setting = self.current_setting()
        try:
            scenario = setting.scenario()
        except ScenarioError as exc:
            self.runner.cancel()  # an older run's results would not be what the controls say
            self._show_errors(exc, setting.source)
            self.status.object = f"⚠ {w('fix the marked values')}"
            return False
        self.status.object = f"⏳ {w('computing…')}"
        self.charts.loading = True
        try:
            fresh, result = await self.runner.submit(lambda progress: simulate(scenario, progress))
        except (PortfolioError, ScenarioError) as exc:
            self._show_message(str(exc))
            self.status.object, self.charts.loading = f"⚠ {w('fix the marked values')}", False
            return False
        if not fresh:
            return False
        self.ds, self.seconds = result
        self.shown_setting = setting
        self.show_results()
        self.status.object, self.charts.loading = f"✓ {w('up to date')}", False
        return True

    def _show_message(self, text: str) -> None:
        self.message.object, self.message.visible = text.replace("\n", "  \n"), True

    def _show_errors(self, exc: ScenarioError, source: str) -> None:
        """Each problem beside its control; the rest (a rule across keys) above the results."""
        general = []
        for where, english in error_lines(exc, source):
            why = message(english, self.lang)
            alert = self.form.message_for(where)
            if alert is None:
                general.append(f"{where}: {why}" if where else why)
            else:
                alert.object, alert.visible = f"{where}: {why}", True
        if general:
            self._show_message("\n".join(general))

    def show_results(self) -> None:
        """Draw the last run's results (and its comparison with the baseline) in the page's language."""
        if self.ds is None:
            return
        w, ds = self.w, self.ds
        self.intro.object = views.intro(ds, w, self.seconds)
        self.headline.object = views.headline_frame(ds, w)
        self.parties.object = views.party_frame(ds, w)
        self.charts.objects = [pn.pane.Bokeh(chart(ds, w), sizing_mode="stretch_width")
                               for chart in (views.pool_fan, views.loss_exceedance, views.sizing_curve)]
        self._show_comparison()

    def _show_comparison(self) -> None:
        if self.baseline is None or self.ds is None:
            self.comparison.object, self.compare_note.object = None, self.w("no baseline pinned yet")
            return
        try:
            self.comparison.object = views.comparison_frame(self.baseline, self.ds, self.lang)
        except ValueError as exc:  # e.g. runs without a common VaR level
            self.comparison.object, self.compare_note.object = None, str(exc)
            return
        self.compare_note.object = self.baseline.attrs.get("notes", "")

    def pin_baseline(self) -> None:
        """Keep the shown run as the baseline the later runs are compared with."""
        self.baseline = self.ds
        self._show_comparison()

    def set_language(self, lang: str) -> None:
        """Relabel the page in English or Chinese (the results are drawn again, not re-run)."""
        self.lang, self.w = lang, translator(lang)
        w = self.w
        self.title.object = f"## {w('riskpool — scheme designer')}"
        self.baseline_title.object, self.export_title.object = f"### {w('Baseline')}", f"### {w('Export')}"
        self.menu.label, self.pin.label = w("scenario"), w("pin as baseline")
        self.toml_upload.label, self.csv_upload.label = w("scenario file (TOML)"), w("portfolio file (CSV)")
        self.toml_download.label, self.csv_download.label = w("scenario TOML"), w("results CSV")
        for f in self.form.fields:
            f.relabel(w)
        self._render_controls()
        self.show_results()

    def switch(self, name: str) -> None:
        """Open another scenario of the menu with its own controls."""
        try:
            setting = Setting.from_file(self.scenarios[name], self.setting.n_paths)
            setting.scenario()
        except ScenarioError as exc:
            self._show_message(str(exc))
            return
        self.setting, self.portfolio = setting, None
        self._load_form()
        self.request()

    def _save_upload(self, filename: str, content: bytes, suffix: str) -> Path:
        """Keep an upload under `upload_dir`, named by its own name and its content's hash."""
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(content).hexdigest()[:12]
        path = self.upload_dir / f"{Path(safe_name(filename)).stem}-{digest}{suffix}"
        path.write_bytes(content)
        return path.resolve()

    def upload_toml(self, filename: str | None, content: bytes | None) -> None:
        """A scenario file from the visitor's computer: checked as `riskpool validate` checks it (a
        relative portfolio path resolves against the upload folder), then added to the menu."""
        if not content:
            return
        path = self._save_upload(filename or "scenario.toml", content, ".toml")
        try:
            build_portfolio(Setting.from_file(path, self.setting.n_paths).scenario())
        except (ScenarioError, PortfolioError) as exc:
            self._show_message(str(exc))
            return
        name = f"{self.w('Upload')}: {safe_name(filename or path.name)}"
        self.scenarios[name] = path
        self.menu.options = list(self.scenarios)
        self.menu.value = name

    def upload_csv(self, filename: str | None, content: bytes | None) -> None:
        """A portfolio file in place of the scenario's book, checked as the command line checks it."""
        if not content:
            return
        path = self._save_upload(filename or "portfolio.csv", content, ".csv")
        table = {"path": str(path), "extra_columns": self.setting.scenario().portfolio.extra_columns}
        previous, self.portfolio = self.portfolio, table
        try:
            build_portfolio(self.current_setting().scenario())
        except (ScenarioError, PortfolioError) as exc:
            self.portfolio = previous
            self._show_message(str(exc))
            return
        self.request()

    def export_toml(self) -> io.StringIO:
        """The shown results' setting as a scenario file (`riskpool run` repeats it bit for bit)."""
        return io.StringIO("" if self.shown_setting is None else self.shown_setting.toml())

    def export_csv(self) -> io.StringIO:
        """The shown results' headline figures, as summary.csv of `riskpool run`."""
        return io.StringIO("" if self.ds is None else views.results_csv(self.ds))
